"""meshgen: a single photo of an object to a textured 3D mesh. Knows nothing of AWS."""
