"""The course's ConvNets, layer for layer.

Each function returns the hidden layers between the ``Rescaling(1/255)`` input layer and the
output layer that :func:`imgclf.models.create_model` adds. All convolutions are 3x3 'valid' with
ReLU, all pools 2x2 max-pools, as in the course notebooks.
"""

from keras import layers

from imgclf.models._registry import register_model
from imgclf.settings import DEFAULT_TARGET_SIZE


def _conv_stack(filters):
    """3x3 ReLU convolutions, each followed by a 2x2 max-pool; named conv_1, pool_1, conv_2, ..."""
    out = []
    for i, f in enumerate(filters, start=1):
        out += [
            layers.Conv2D(f, (3, 3), activation="relu", name=f"conv_{i}"),
            layers.MaxPooling2D(2, 2, name=f"pool_{i}"),
        ]
    return out


@register_model(
    "course_small",
    description="Conv 16-32-64 + MaxPool, Flatten, Dense 512 (9,494,561 params at 150x150x3, binary)",
    default_target_size=DEFAULT_TARGET_SIZE,
    min_size=(22, 22),
    source="Convolutional Neural Networks in TensorFlow, week 1 (cats vs dogs, Course 2 Part 2 Lesson 2)",
)
def course_small():
    return [
        *_conv_stack((16, 32, 64)),
        layers.Flatten(name="flatten"),
        layers.Dense(512, activation="relu", name="dense"),
    ]


@register_model(
    "chollet",
    description="Conv 32-64-128-128 + MaxPool, Flatten, Dropout 0.5, Dense 512 (3,453,121 params at 150x150x3)",
    default_target_size=DEFAULT_TARGET_SIZE,
    min_size=(46, 46),
    source="F. Chollet, Deep Learning with Python (2017), 5.2; course week 2 (augmentation)",
)
def chollet():
    return [
        *_conv_stack((32, 64, 128, 128)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(512, activation="relu"),
    ]


@register_model(
    "course_28",
    description="Conv 64-64 + MaxPool for 28x28 grayscale, Flatten, Dense 128 (sign language / Fashion-MNIST)",
    default_target_size=(28, 28),
    default_color_mode="grayscale",
    min_size=(10, 10),
    source="Course 1 week 3 (Fashion-MNIST) and Course 2 week 4 (sign language MNIST)",
)
def course_28():
    return [*_conv_stack((64, 64)), layers.Flatten(name="flatten"), layers.Dense(128, activation="relu", name="dense")]
