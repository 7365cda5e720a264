"""CoopSegLib: cooperative training and latent-space data augmentation for robust cardiac MR segmentation.

Chen et al., "Cooperative Training and Latent Space Data Augmentation for Robust Medical Image Segmentation",
MICCAI 2021. The core (networks, masking, cooperative training) needs torch and numpy only.

Label codes everywhere: 0 background, 1 LV cavity, 2 LV myocardium, 3 RV cavity.
"""

__version__ = "0.1.0"
