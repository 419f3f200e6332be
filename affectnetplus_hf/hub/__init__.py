"""Publishing an export to the Hub (private, gated, manifest-owned) and streaming an export back."""
