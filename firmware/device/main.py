# Runs at every start of the kit: the boot loader first (it finishes a switch to a new firmware, or rolls a
# failed one back), then the firmware. Like lauks_boot.py, never updated over the air.
import lauks_boot


def load():
    from lauks_kit.app import Kit
    from lauks_kit.board_esp32 import Board

    return Kit(Board())


lauks_boot.main(load)
