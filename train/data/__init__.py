"""Datasets: the synthetic scene generator, Airbus/ShipsNet/folder loaders, RLE, tf.data."""
