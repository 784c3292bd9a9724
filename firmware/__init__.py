"""Host-side tools for the kit firmware (add, flash, simulate); the device code lives beside them."""
