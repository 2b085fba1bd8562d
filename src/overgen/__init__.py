"""overgen: denoising-autoencoder confidence scores against overgeneralization."""

__version__ = "0.1.0"
