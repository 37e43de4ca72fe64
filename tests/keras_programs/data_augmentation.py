"""TensorFlow tutorial tutorials/images/data_augmentation, ported to cnnx: the Keras
preprocessing layers part (the tf.image part has no cnnx form). tfds' tf_flowers is a download;
the test gives the program class folders of CIFAR-10 photos, read unbatched as tfds gives them."""

import os

import matplotlib

matplotlib.use("Agg")  # cnnx test: no display
import matplotlib.pyplot as plt
import numpy as np

import cnnx as keras
from cnnx import layers

QUICK = os.environ.get("KERAS_PROGRAM_QUICK") == "1"  # cnnx test: small images, one epoch
AUTOTUNE = keras.data.AUTOTUNE

# cnnx test: instead of tfds.load("tf_flowers", split=[...], with_info=True, as_supervised=True)
train_ds, val_ds = keras.utils.image_dataset_from_directory(
    os.environ["KERAS_PROGRAM_DATA"], validation_split=0.2, subset="both", seed=1, batch_size=None
)
test_ds = val_ds.take(32)
class_names = train_ds.class_names
num_classes = len(class_names)
print(num_classes)

get_label_name = lambda i: class_names[int(i)]  # noqa: E731

image, label = next(iter(train_ds))
_ = plt.imshow(np.asarray(image).astype("uint8"))
_ = plt.title(get_label_name(label))

IMG_SIZE = 32 if QUICK else 180  # cnnx test

resize_and_rescale = keras.Sequential([layers.Resizing(IMG_SIZE, IMG_SIZE), layers.Rescaling(1.0 / 255)])

result = resize_and_rescale(image)
_ = plt.imshow(result)
print("Min and max pixel values:", result.numpy().min(), result.numpy().max())
assert result.shape == (IMG_SIZE, IMG_SIZE, 3)  # cnnx test

data_augmentation = keras.Sequential([layers.RandomFlip("horizontal_and_vertical"), layers.RandomRotation(0.2)])

# Add the image to a batch.
image = keras.ops.cast(keras.ops.expand_dims(image, 0), "float32")

plt.figure(figsize=(10, 10))
for i in range(9):
    augmented_image = data_augmentation(image)
    ax = plt.subplot(3, 3, i + 1)
    plt.imshow(augmented_image[0])
    plt.axis("off")

model = keras.Sequential(
    [
        # Add the preprocessing layers you created earlier.
        resize_and_rescale,
        data_augmentation,
        layers.Conv2D(16, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        # Rest of your model.
    ]
)

aug_ds = train_ds.map(lambda x, y: (resize_and_rescale(x, training=True), y))

batch_size = 32


def prepare(ds, shuffle=False, augment=False):
    # Resize and rescale all datasets.
    ds = ds.map(lambda x, y: (resize_and_rescale(x), y), num_parallel_calls=AUTOTUNE)

    if shuffle:
        ds = ds.shuffle(1000)

    # Batch all datasets.
    ds = ds.batch(batch_size)

    # Use data augmentation only on the training set.
    if augment:
        ds = ds.map(lambda x, y: (data_augmentation(x, training=True), y), num_parallel_calls=AUTOTUNE)

    # Use buffered prefetching on all datasets.
    return ds.prefetch(buffer_size=AUTOTUNE)


train_ds = prepare(train_ds, shuffle=True, augment=True)
val_ds = prepare(val_ds)
test_ds = prepare(test_ds)

model = keras.Sequential(
    [
        layers.Conv2D(16, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dense(num_classes),
    ]
)

model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])

epochs = 1 if QUICK else 5  # cnnx test
history = model.fit(train_ds, validation_data=val_ds, epochs=epochs)

loss, acc = model.evaluate(test_ds)
print("Accuracy", acc)
