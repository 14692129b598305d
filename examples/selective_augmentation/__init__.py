"""Selective synthetic augmentation (Xue et al. 2021) and GAN augmentations on a labelled image set."""
