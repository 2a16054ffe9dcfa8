"""Training on several devices or machines (``tf.distribute``): the cluster, its steps, and one runner."""
