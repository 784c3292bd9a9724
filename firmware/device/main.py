# Runs at every start of the kit: the Lauks firmware, and a clear log line if anything goes badly wrong.
import sys

try:
    from lauks_kit.app import Kit
    from lauks_kit.board_esp32 import Board

    Kit(Board()).run()
except Exception as e:  # last resort: log, then restart after a pause rather than hang
    sys.print_exception(e)
    import machine
    import time
    time.sleep(30)
    machine.reset()
