"""shipcam.train: datasets, the GMP classifier and the training toolkit."""
