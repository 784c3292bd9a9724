"""Provisioning tests import the device code itself (firmware/device), as the simulator does."""

from firmware.device_path import use_device_code

use_device_code()
