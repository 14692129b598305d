"""GAN inversion: batched projector, encoder, latent cache."""
