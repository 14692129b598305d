"""Cross-modal augmentation on the built-in phantom (Yang & Xie): MRI translated to CT for a CT task."""
