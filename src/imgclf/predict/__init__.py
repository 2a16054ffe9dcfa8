"""Prediction with a trained model: :class:`~imgclf.predict.predictor.Predictor` reads images exactly as training
did and scores them (probabilities, penultimate features, "unknown" scores, skipped files)."""
