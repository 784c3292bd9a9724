"""The API for classes: sites, kits, readings and class datasets."""
