"""Training stack for edgeseg (torch)."""
