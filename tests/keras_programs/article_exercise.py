"""The article's exercise network (Conv2D 32/64/128 with LeakyReLU, max-pooling and Dropout,
Dense 128, softmax) as its readers write it with Keras, on MNIST, ported to cnnx."""

import os

import numpy as np

import cnnx as keras
from cnnx.layers import Conv2D, Dense, Dropout, Flatten, LeakyReLU, MaxPooling2D
from cnnx.models import Sequential
from cnnx.utils import to_categorical

QUICK = os.environ.get("KERAS_PROGRAM_QUICK") == "1"  # cnnx test: a slice of the data, one epoch

(train_X, train_Y), (test_X, test_Y) = keras.datasets.mnist.load_data()
if QUICK:  # cnnx test
    train_X, train_Y, test_X, test_Y = train_X[:10000], train_Y[:10000], test_X[:1000], test_Y[:1000]
print("Training data shape : ", train_X.shape, train_Y.shape)

train_X = train_X.reshape(-1, 28, 28, 1)
test_X = test_X.reshape(-1, 28, 28, 1)
train_X = train_X.astype("float32") / 255.0
test_X = test_X.astype("float32") / 255.0

train_Y_one_hot = to_categorical(train_Y)
test_Y_one_hot = to_categorical(test_Y)

# train_test_split(train_X, train_Y_one_hot, test_size=0.2, random_state=13), without scikit-learn
order = np.random.default_rng(13).permutation(len(train_X))
cut = int(0.8 * len(train_X))
train_X, valid_X = train_X[order[:cut]], train_X[order[cut:]]
train_label, valid_label = train_Y_one_hot[order[:cut]], train_Y_one_hot[order[cut:]]

batch_size = 64
epochs = 2 if QUICK else 20  # cnnx test
num_classes = 10

fashion_model = Sequential()
fashion_model.add(Conv2D(32, kernel_size=(3, 3), activation="linear", padding="same", input_shape=(28, 28, 1)))
fashion_model.add(LeakyReLU(negative_slope=0.1))
fashion_model.add(MaxPooling2D((2, 2), padding="same"))
fashion_model.add(Dropout(0.25))
fashion_model.add(Conv2D(64, (3, 3), activation="linear", padding="same"))
fashion_model.add(LeakyReLU(negative_slope=0.1))
fashion_model.add(MaxPooling2D(pool_size=(2, 2), padding="same"))
fashion_model.add(Dropout(0.25))
fashion_model.add(Conv2D(128, (3, 3), activation="linear", padding="same"))
fashion_model.add(LeakyReLU(negative_slope=0.1))
fashion_model.add(MaxPooling2D(pool_size=(2, 2), padding="same"))
fashion_model.add(Dropout(0.4))
fashion_model.add(Flatten())
fashion_model.add(Dense(128, activation="linear"))
fashion_model.add(LeakyReLU(negative_slope=0.1))
fashion_model.add(Dropout(0.3))
fashion_model.add(Dense(num_classes, activation="softmax"))

fashion_model.summary()

fashion_model.compile(
    loss=keras.losses.categorical_crossentropy, optimizer=keras.optimizers.Adam(), metrics=["accuracy"]
)

fashion_train_dropout = fashion_model.fit(
    train_X, train_label, batch_size=batch_size, epochs=epochs, verbose=1, validation_data=(valid_X, valid_label)
)

fashion_model.save("fashion_model_dropout.keras")

test_eval = fashion_model.evaluate(test_X, test_Y_one_hot, verbose=1)
print("Test loss:", test_eval[0])
print("Test accuracy:", test_eval[1])

accuracy = fashion_train_dropout.history["accuracy"]
val_accuracy = fashion_train_dropout.history["val_accuracy"]
loss = fashion_train_dropout.history["loss"]
val_loss = fashion_train_dropout.history["val_loss"]

predicted_classes = fashion_model.predict(test_X)
predicted_classes = np.argmax(np.round(predicted_classes), axis=1)
correct = np.where(predicted_classes == test_Y)[0]
print("Found %d correct labels" % len(correct))
incorrect = np.where(predicted_classes != test_Y)[0]
print("Found %d incorrect labels" % len(incorrect))

reloaded = keras.models.load_model("fashion_model_dropout.keras")  # cnnx test: the file reads back
assert np.allclose(reloaded.predict(test_X[:16]), fashion_model.predict(test_X[:16]), atol=1e-6)
print(f"test_accuracy={test_eval[1]:.4f}")
