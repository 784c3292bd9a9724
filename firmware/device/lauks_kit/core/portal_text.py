# The setup page's sentences in lv, lt, ru and en: whole sentences with named placeholders, one key each.
# Loaded only while a page is rendered (core/portal_page.py), so a kit online never holds them in RAM.

TEXT = {
    "en": {
        "title": "Wi-Fi for the Lauks kit %(kit)s",
        "intro": "Choose the school's Wi-Fi network and type its password. The kit joins it, remembers it and "
                 "starts sending its readings.",
        "networks": "Networks the kit can see",
        "signal": "signal",
        "open_network": "open, no password",
        "password": "Password",
        "join": "Join",
        "scan_again": "Scan again",
        "language": "Language",
        "none_found": "The kit sees no Wi-Fi networks. Move it closer to the school's access point and scan again.",
        "wrong_password": "The kit could not join %(ssid)s: the password is wrong. Type it again (capital letters "
                          "count).",
        "vanished": "The network %(ssid)s cannot be seen any more. Choose another network or scan again.",
        "no_answer": "%(ssid)s did not let the kit in within 15 seconds. Try again, or choose another network.",
        "joined": "The kit joined %(ssid)s and remembers it. It now sends its readings, and this access point "
                  "closes: if the page does not load again, that is why.",
        "save_failed": "The kit joined %(ssid)s but could not save it in its memory, so it will forget it after a "
                       "restart. Try again.",
        "no_network": "Choose a network from the list first.",
        "bad_form": "The form could not be read (it was too long, or not text). Reload the page and try again.",
        "ssid_too_long": "A network name has at most 32 bytes: choose one from the list.",
        "password_length": "A Wi-Fi password has 8 to 63 characters (or none, for an open network).",
    },
    "lv": {
        "title": "Lauks komplekta %(kit)s Wi-Fi",
        "intro": "Izvēlieties skolas Wi-Fi tīklu un ierakstiet tā paroli. Komplekts pievienosies tīklam, to "
                 "atcerēsies un sāks sūtīt mērījumus.",
        "networks": "Tīkli, ko komplekts redz",
        "signal": "signāls",
        "open_network": "atvērts, bez paroles",
        "password": "Parole",
        "join": "Pievienoties",
        "scan_again": "Meklēt vēlreiz",
        "language": "Valoda",
        "none_found": "Komplekts neredz nevienu Wi-Fi tīklu. Novietojiet to tuvāk skolas piekļuves punktam un "
                      "meklējiet vēlreiz.",
        "wrong_password": "Komplekts nevarēja pievienoties tīklam %(ssid)s: parole ir nepareiza. Ierakstiet to "
                          "vēlreiz (lielie burti ir svarīgi).",
        "vanished": "Tīkls %(ssid)s vairs nav redzams. Izvēlieties citu tīklu vai meklējiet vēlreiz.",
        "no_answer": "Tīkls %(ssid)s 15 sekundēs neielaida komplektu. Mēģiniet vēlreiz vai izvēlieties citu tīklu.",
        "joined": "Komplekts pievienojās tīklam %(ssid)s un to atcerēsies. Tagad tas sūta mērījumus, un šis "
                  "piekļuves punkts tiek aizvērts: ja lapa vairs neielādējas, tas ir tāpēc.",
        "save_failed": "Komplekts pievienojās tīklam %(ssid)s, bet nevarēja to saglabāt atmiņā, tāpēc pēc "
                       "restartēšanas to aizmirsīs. Mēģiniet vēlreiz.",
        "no_network": "Vispirms izvēlieties tīklu no saraksta.",
        "bad_form": "Veidlapu nevarēja nolasīt (tā bija par garu vai nebija teksts). Pārlādējiet lapu un "
                    "mēģiniet vēlreiz.",
        "ssid_too_long": "Tīkla nosaukumā ir ne vairāk kā 32 baiti: izvēlieties tīklu no saraksta.",
        "password_length": "Wi-Fi parolē ir 8 līdz 63 rakstzīmes (vai nav nevienas, ja tīkls ir atvērts).",
    },
    "lt": {
        "title": "Lauks rinkinio %(kit)s Wi-Fi",
        "intro": "Pasirinkite mokyklos Wi-Fi tinklą ir įveskite jo slaptažodį. Rinkinys prisijungs, jį įsimins ir "
                 "pradės siųsti matavimus.",
        "networks": "Tinklai, kuriuos mato rinkinys",
        "signal": "signalas",
        "open_network": "atviras, be slaptažodžio",
        "password": "Slaptažodis",
        "join": "Prisijungti",
        "scan_again": "Ieškoti dar kartą",
        "language": "Kalba",
        "none_found": "Rinkinys nemato jokio Wi-Fi tinklo. Padėkite jį arčiau mokyklos prieigos taško ir ieškokite "
                      "dar kartą.",
        "wrong_password": "Rinkinys negalėjo prisijungti prie %(ssid)s: slaptažodis neteisingas. Įveskite jį dar "
                          "kartą (didžiosios raidės svarbios).",
        "vanished": "Tinklo %(ssid)s nebesimato. Pasirinkite kitą tinklą arba ieškokite dar kartą.",
        "no_answer": "Tinklas %(ssid)s per 15 sekundžių neįleido rinkinio. Bandykite dar kartą arba pasirinkite "
                     "kitą tinklą.",
        "joined": "Rinkinys prisijungė prie %(ssid)s ir jį įsimins. Dabar jis siunčia matavimus, o šis prieigos "
                  "taškas uždaromas: jei puslapis nebeužsikrauna, todėl.",
        "save_failed": "Rinkinys prisijungė prie %(ssid)s, bet negalėjo jo išsaugoti atmintyje, todėl po paleidimo "
                       "iš naujo jį pamirš. Bandykite dar kartą.",
        "no_network": "Pirmiausia pasirinkite tinklą iš sąrašo.",
        "bad_form": "Formos nepavyko perskaityti (ji buvo per ilga arba ne tekstas). Įkelkite puslapį iš naujo ir "
                    "bandykite dar kartą.",
        "ssid_too_long": "Tinklo pavadinimas turi ne daugiau kaip 32 baitus: pasirinkite tinklą iš sąrašo.",
        "password_length": "Wi-Fi slaptažodis turi nuo 8 iki 63 simbolių (arba nė vieno, jei tinklas atviras).",
    },
    "ru": {
        "title": "Wi-Fi для комплекта Lauks %(kit)s",
        "intro": "Выберите Wi-Fi сеть школы и введите её пароль. Комплект подключится, запомнит её и начнёт "
                 "отправлять измерения.",
        "networks": "Сети, которые видит комплект",
        "signal": "сигнал",
        "open_network": "открытая, без пароля",
        "password": "Пароль",
        "join": "Подключить",
        "scan_again": "Искать снова",
        "language": "Язык",
        "none_found": "Комплект не видит ни одной Wi-Fi сети. Поставьте его ближе к точке доступа школы и "
                      "поищите снова.",
        "wrong_password": "Комплект не смог подключиться к %(ssid)s: неверный пароль. Введите его ещё раз "
                          "(заглавные буквы важны).",
        "vanished": "Сеть %(ssid)s больше не видна. Выберите другую сеть или поищите снова.",
        "no_answer": "Сеть %(ssid)s не впустила комплект за 15 секунд. Попробуйте ещё раз или выберите другую сеть.",
        "joined": "Комплект подключился к %(ssid)s и запомнит её. Теперь он отправляет измерения, а эта точка "
                  "доступа закрывается: если страница больше не загружается, причина в этом.",
        "save_failed": "Комплект подключился к %(ssid)s, но не смог сохранить её в памяти и забудет её после "
                       "перезапуска. Попробуйте ещё раз.",
        "no_network": "Сначала выберите сеть из списка.",
        "bad_form": "Не удалось прочитать форму (она слишком длинная или не текст). Перезагрузите страницу и "
                    "попробуйте снова.",
        "ssid_too_long": "Имя сети занимает не больше 32 байт: выберите сеть из списка.",
        "password_length": "Пароль Wi-Fi содержит от 8 до 63 символов (или его нет у открытой сети).",
    },
}
