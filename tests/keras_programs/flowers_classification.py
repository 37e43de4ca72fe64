"""TensorFlow tutorial tutorials/images/classification ("Image classification", flowers), ported to
cnnx (`tf.keras.X` -> `cnnx.X`, `tf.data.AUTOTUNE` -> `cnnx.data.AUTOTUNE`, `tf.nn.softmax` /
`tf.expand_dims` -> `cnnx.ops`). The flowers archive is a download; the test gives the program
class folders of CIFAR-10 photos instead. The TensorFlow Lite part at the end has no cnnx form."""

import os
import pathlib

import matplotlib

matplotlib.use("Agg")  # cnnx test: no display
import matplotlib.pyplot as plt
import numpy as np

import cnnx
from cnnx import layers, ops
from cnnx.models import Sequential

QUICK = os.environ.get("KERAS_PROGRAM_QUICK") == "1"  # cnnx test: small images, few epochs
data_dir = pathlib.Path(os.environ["KERAS_PROGRAM_DATA"])  # cnnx test: instead of get_file(flower_photos.tgz)

image_count = len(list(data_dir.glob("*/*.jpg")))
print(image_count)

batch_size = 32
img_height = 48 if QUICK else 180  # cnnx test
img_width = 48 if QUICK else 180

train_ds = cnnx.utils.image_dataset_from_directory(
    data_dir,
    validation_split=0.2,
    subset="training",
    seed=123,
    image_size=(img_height, img_width),
    batch_size=batch_size,
)
val_ds = cnnx.utils.image_dataset_from_directory(
    data_dir,
    validation_split=0.2,
    subset="validation",
    seed=123,
    image_size=(img_height, img_width),
    batch_size=batch_size,
)

class_names = train_ds.class_names
print(class_names)

plt.figure(figsize=(10, 10))
for images, labels in train_ds.take(1):
    for i in range(9):
        ax = plt.subplot(3, 3, i + 1)
        plt.imshow(images[i].numpy().astype("uint8"))
        plt.title(class_names[labels[i]])
        plt.axis("off")

for image_batch, labels_batch in train_ds:
    print(image_batch.shape)
    print(labels_batch.shape)
    break

AUTOTUNE = cnnx.data.AUTOTUNE

train_ds = train_ds.cache().shuffle(1000).prefetch(buffer_size=AUTOTUNE)
val_ds = val_ds.cache().prefetch(buffer_size=AUTOTUNE)

normalization_layer = layers.Rescaling(1.0 / 255)

normalized_ds = train_ds.map(lambda x, y: (normalization_layer(x), y))
image_batch, labels_batch = next(iter(normalized_ds))
first_image = image_batch[0]
# Notice the pixel values are now in `[0,1]`.
print(np.min(first_image), np.max(first_image))
assert 0.0 <= np.min(first_image) <= np.max(first_image) <= 1.0  # cnnx test

num_classes = len(class_names)

model = Sequential(
    [
        layers.Rescaling(1.0 / 255, input_shape=(img_height, img_width, 3)),
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

model.compile(optimizer="adam", loss=cnnx.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])

model.summary()

epochs = 2 if QUICK else 10  # cnnx test
history = model.fit(train_ds, validation_data=val_ds, epochs=epochs)

acc = history.history["accuracy"]
val_acc = history.history["val_accuracy"]

loss = history.history["loss"]
val_loss = history.history["val_loss"]

epochs_range = range(epochs)

plt.figure(figsize=(8, 8))
plt.subplot(1, 2, 1)
plt.plot(epochs_range, acc, label="Training Accuracy")
plt.plot(epochs_range, val_acc, label="Validation Accuracy")
plt.legend(loc="lower right")
plt.title("Training and Validation Accuracy")

plt.subplot(1, 2, 2)
plt.plot(epochs_range, loss, label="Training Loss")
plt.plot(epochs_range, val_loss, label="Validation Loss")
plt.legend(loc="upper right")
plt.title("Training and Validation Loss")

data_augmentation = cnnx.Sequential(
    [
        layers.RandomFlip("horizontal", input_shape=(img_height, img_width, 3)),
        layers.RandomRotation(0.1),
        layers.RandomZoom(0.1),
    ]
)

plt.figure(figsize=(10, 10))
for images, _ in train_ds.take(1):
    for i in range(9):
        augmented_images = data_augmentation(images)
        ax = plt.subplot(3, 3, i + 1)
        plt.imshow(augmented_images[0].numpy().astype("uint8"))
        plt.axis("off")

model = Sequential(
    [
        data_augmentation,
        layers.Rescaling(1.0 / 255),
        layers.Conv2D(16, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Dropout(0.2),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dense(num_classes, name="outputs"),
    ]
)

model.compile(optimizer="adam", loss=cnnx.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])

model.summary()

epochs = 2 if QUICK else 15  # cnnx test
history = model.fit(train_ds, validation_data=val_ds, epochs=epochs)

sunflower_path = sorted(data_dir.glob("*/*.jpg"))[0]  # cnnx test: instead of get_file(Red_sunflower.jpg)

img = cnnx.utils.load_img(sunflower_path, target_size=(img_height, img_width))
img_array = cnnx.utils.img_to_array(img)
img_array = ops.expand_dims(img_array, 0)  # Create a batch

predictions = model.predict(img_array)
score = ops.softmax(predictions[0])

print(
    "This image most likely belongs to {} with a {:.2f} percent confidence.".format(
        class_names[np.argmax(score)], 100 * np.max(score)
    )
)
