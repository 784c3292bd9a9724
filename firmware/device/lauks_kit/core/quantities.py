# Catalog quantities the firmware can measure, with a one-byte id used in the flash ring.
# Append only: an id already in a kit's flash must keep its meaning across firmware updates.
NAMES = (
    "temperature", "soil_temperature", "water_temperature", "humidity", "pressure", "light",
    "uv_index", "soil_moisture", "wind_speed", "wind_gust", "wind_direction", "rain",
    "pm1", "pm2_5", "pm10", "co2", "tvoc", "noise", "battery", "rssi",
)
IDS = {}
for _i, _n in enumerate(NAMES):
    IDS[_n] = _i
