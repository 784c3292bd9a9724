# Checksums the sensors and the flash ring use: CRC-8 (Sensirion poly 0x31 and Maxim/Dallas 1-Wire).


def crc8_sensirion(data, init=0xFF):
    """CRC-8 of the SCD30/SCD4x datasheets: polynomial 0x31, init 0xFF, no reflection. crc(BE EF) = 0x92."""
    crc = init
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def crc8_maxim(data):
    """CRC-8 of the 1-Wire bus (DS18B20 ROM and scratchpad): x^8+x^5+x^4+1, reflected (0x8C), init 0."""
    crc = 0
    for byte in data:
        for _ in range(8):
            mix = (crc ^ byte) & 1
            crc >>= 1
            if mix:
                crc ^= 0x8C
            byte >>= 1
    return crc
