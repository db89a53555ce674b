"""Model hosting at runtime: the names deployed endpoints are published under, reading the serving
version at synth (so a deploy never reverts a promotion), and promotion itself (docs/hosting.md)."""
