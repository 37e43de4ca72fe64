"""TensorFlow tutorial tutorials/keras/classification ("Basic classification: Classify images of
clothing"), ported to cnnx. This machine has no Fashion-MNIST files and no internet, so the test
gives the program MNIST in the same format (cnnx.datasets.fashion_mnist reads either)."""

import os

import matplotlib

matplotlib.use("Agg")  # cnnx test: no display
import matplotlib.pyplot as plt
import numpy as np

import cnnx

QUICK = os.environ.get("KERAS_PROGRAM_QUICK") == "1"  # cnnx test: a slice of the data, fewer epochs

if os.environ.get("KERAS_PROGRAM_FASHION", "1") == "1":
    fashion_mnist = cnnx.datasets.fashion_mnist
else:  # cnnx test: no Fashion-MNIST here; MNIST has the same shapes and dtypes
    fashion_mnist = cnnx.datasets.mnist

(train_images, train_labels), (test_images, test_labels) = fashion_mnist.load_data()
if QUICK:  # cnnx test
    train_images, train_labels, test_images, test_labels = (
        train_images[:5000],
        train_labels[:5000],
        test_images[:1000],
        test_labels[:1000],
    )

class_names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

print(train_images.shape, len(train_labels), train_labels, test_images.shape, len(test_labels))

plt.figure()
plt.imshow(train_images[0])
plt.colorbar()
plt.grid(False)

train_images = train_images / 255.0

test_images = test_images / 255.0

model = cnnx.Sequential(
    [cnnx.layers.Flatten(input_shape=(28, 28)), cnnx.layers.Dense(128, activation="relu"), cnnx.layers.Dense(10)]
)

model.compile(optimizer="adam", loss=cnnx.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])

model.fit(train_images, train_labels, epochs=2 if QUICK else 10)  # cnnx test: epochs

test_loss, test_acc = model.evaluate(test_images, test_labels, verbose=2)

print("\nTest accuracy:", test_acc)

probability_model = cnnx.Sequential([model, cnnx.layers.Softmax()])

predictions = probability_model.predict(test_images)

print(predictions[0])
print(np.argmax(predictions[0]), test_labels[0])
assert np.allclose(predictions.sum(axis=1), 1.0, atol=1e-5)  # cnnx test

# Grab an image from the test dataset.
img = test_images[1]

print(img.shape)

# Add the image to a batch where it's the only member.
img = np.expand_dims(img, 0)

print(img.shape)

predictions_single = probability_model.predict(img)

print(predictions_single)
print(np.argmax(predictions_single[0]))
assert np.argmax(predictions_single[0]) == np.argmax(predictions[1])  # cnnx test
print(f"test_accuracy={test_acc:.4f}")
