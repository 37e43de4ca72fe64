"""TensorFlow tutorial tutorials/images/cnn ("Convolutional Neural Network (CNN)", CIFAR-10),
ported to cnnx (`tensorflow.keras` imports -> cnnx; `tf.keras.losses` -> `cnnx.losses`)."""

import os

import matplotlib

matplotlib.use("Agg")  # cnnx test: no display
import matplotlib.pyplot as plt

import cnnx
from cnnx import datasets, layers, models

QUICK = os.environ.get("KERAS_PROGRAM_QUICK") == "1"  # cnnx test: a slice of CIFAR-10, one epoch

(train_images, train_labels), (test_images, test_labels) = datasets.cifar10.load_data()
if QUICK:  # cnnx test
    train_images, train_labels = train_images[:2000], train_labels[:2000]
    test_images, test_labels = test_images[:500], test_labels[:500]

# Normalize pixel values to be between 0 and 1
train_images, test_images = train_images / 255.0, test_images / 255.0

class_names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

plt.figure(figsize=(10, 10))
for i in range(25):
    plt.subplot(5, 5, i + 1)
    plt.xticks([])
    plt.yticks([])
    plt.grid(False)
    plt.imshow(train_images[i])
    # The CIFAR labels happen to be arrays,
    # which is why you need the extra index
    plt.xlabel(class_names[train_labels[i][0]])

model = models.Sequential()
model.add(layers.Conv2D(32, (3, 3), activation="relu", input_shape=(32, 32, 3)))
model.add(layers.MaxPooling2D((2, 2)))
model.add(layers.Conv2D(64, (3, 3), activation="relu"))
model.add(layers.MaxPooling2D((2, 2)))
model.add(layers.Conv2D(64, (3, 3), activation="relu"))

model.summary()

model.add(layers.Flatten())
model.add(layers.Dense(64, activation="relu"))
model.add(layers.Dense(10))

model.summary()

model.compile(optimizer="adam", loss=cnnx.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])

history = model.fit(
    train_images, train_labels, epochs=1 if QUICK else 10, validation_data=(test_images, test_labels)
)  # cnnx test: epochs

plt.plot(history.history["accuracy"], label="accuracy")
plt.plot(history.history["val_accuracy"], label="val_accuracy")
plt.xlabel("Epoch")
plt.ylabel("Accuracy")
plt.ylim([0.5, 1])
plt.legend(loc="lower right")

test_loss, test_acc = model.evaluate(test_images, test_labels, verbose=2)
print(test_acc)
