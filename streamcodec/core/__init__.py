"""The codec core shared by speech and image: quantiser, entropy coding and the ADMM latent search
(numpy); the image losses (torch)."""
