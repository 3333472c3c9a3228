"""The codec core shared by speech and image: quantiser, entropy coding and (later) the ADMM
latent search. Depends on numpy and torch only."""
