# Checks of the setup page's pure core (lauks_kit/core/portal_page.py), written once and run twice: by
# pytest under CPython (test_prov_portal_core.py) and under real MicroPython in Node. MicroPython syntax
# only: plain asserts, no typing.
from lauks_kit.core import portal_page as page
from lauks_kit.core.portal_text import TEXT


def rejects(fn, *args):
    try:
        fn(*args)
    except page.FormError as e:
        return e.args[0]
    return None


def check_the_access_point_opens_after_three_minutes_without_wifi():
    assert not page.should_open(False, None, 10 ** 9)
    assert not page.should_open(False, 1000, 1000 + page.AP_AFTER_MS - 1)
    assert page.should_open(False, 1000, 1000 + page.AP_AFTER_MS)


def check_the_button_opens_it_at_once():
    assert page.should_open(True, None, 0)


def check_the_access_point_is_named_after_the_kit():
    assert page.ap_name("k07") == "Lauks-k07"


def check_the_browsers_best_language_of_ours_is_chosen():
    assert page.pick_language("lv-LV,lv;q=0.9,en-US;q=0.8") == "lv"
    assert page.pick_language("en;q=0.4, ru;q=0.9") == "ru"
    assert page.pick_language("de, lt;q=0.2") == "lt"
    assert page.pick_language("de-DE,fr") == "en"
    assert page.pick_language(None) == "en"
    assert page.pick_language("lv;q=0, ru;q=abc, lt;q=0.1") == "lt"  # q=0: not wanted; a bad q counts as 0


def check_the_language_switch_wins_over_the_browser():
    assert page.pick_language("ru", "lt") == "lt"
    assert page.pick_language("ru", "xx") == "ru"


def check_every_language_has_every_sentence():
    keys = sorted(TEXT["en"])
    for lang in page.LANGUAGES:
        assert sorted(TEXT[lang]) == keys, lang
        for key in keys:
            with_args = page.say(lang, key, kit="k1", ssid="net")
            assert "%(" not in with_args, (lang, key)


def check_markup_in_a_name_is_escaped_everywhere():
    html = page.render("en", "k1", [('<img src=x onerror="a()">', -40, True)], "wrong_password",
                       {"ssid": "<b>&"})
    assert "<img" not in html and "<b>" not in html
    assert "&lt;img src=x onerror=&quot;a()&quot;&gt;" in html and "&lt;b&gt;&amp;" in html


def check_the_page_lists_each_network_once_strongest_first():
    html = page.render("en", "k1", [("weak", -85, True), ("strong", -40, False), ("weak", -60, True)])
    assert html.count('value="weak"') == 1 and html.index("strong") < html.index("weak")
    assert "open, no password" in html and 'value="strong" checked' in html


def check_a_scan_of_nothing_says_what_to_do():
    assert "Move it closer" in page.render("en", "k1", [])


def check_the_page_has_no_script_and_a_strict_policy():
    whole = page.response(200, page.render("ru", "k1", [("a", -50, True)])).decode()
    assert "<script" not in whole and "default-src 'none'" in whole and "Content-Length: " in whole
    body = whole.split("\r\n\r\n", 1)[1]
    assert ("Content-Length: " + str(len(body.encode())) + "\r\n") in whole


def check_a_form_is_percent_decoded_as_utf8():
    ssid, password, lang = page.parse_join(b"ssid=Skola+%C4%80%C4%92&password=p%26ss+w%3Dord&lang=lv")
    assert ssid == "Skola ĀĒ" and password == "p&ss w=ord" and lang == "lv"


def check_an_open_network_needs_no_password():
    assert page.parse_join(b"ssid=cafe&password=") == ("cafe", "", None)


def check_bad_forms_are_refused_with_their_reason():
    assert rejects(page.parse_join, b"ssid=%zz") == "bad_form"
    assert rejects(page.parse_join, b"ssid=%4") == "bad_form"
    assert rejects(page.parse_join, b"ssid=%ff%fe") == "bad_form"
    assert rejects(page.parse_join, b"ssid=a%00b&password=12345678") == "bad_form"
    assert rejects(page.parse_join, b"password=12345678") == "no_network"
    assert rejects(page.parse_join, b"ssid=" + b"x" * 33) == "ssid_too_long"
    assert rejects(page.parse_join, b"ssid=%C4%80" * 17) == "ssid_too_long"  # 34 bytes in 17 characters
    assert rejects(page.parse_join, b"ssid=a&password=short") == "password_length"
    assert rejects(page.parse_join, b"ssid=a&password=" + b"p" * 64) == "password_length"
    assert rejects(page.parse_join, b"ssid=a&password=" + b"p" * 600) == "bad_form"


def check_a_too_long_body_is_a_413():
    try:
        page.body_length({"content-length": "100000"})
    except page.FormError as e:
        assert e.status() == 413
    else:
        raise AssertionError("a body of 100000 bytes was taken")
    assert rejects(page.body_length, {"content-length": "-1"}) == "bad_form"
    assert rejects(page.body_length, {"content-length": "12ab"}) == "bad_form"
    assert page.body_length({}) == 0


def check_a_request_head_is_read_and_bounded():
    method, path, query, headers = page.parse_head(
        b"GET /?lang=lt&scan=1 HTTP/1.1\r\nHost: 192.168.4.1\r\nAccept-Language: ru\r\n")
    assert (method, path, query["lang"], query["scan"], headers["accept-language"]) == ("GET", "/", "lt", "1", "ru")
    assert rejects(page.parse_head, b"GET / HTTP/1.1\r\nX: " + b"a" * page.MAX_HEAD) == "bad_form"
    assert rejects(page.parse_head, b"\xff\xfe") == "bad_form"
    assert rejects(page.parse_head, b"HELLO") == "bad_form"
    assert rejects(page.parse_head, b"GET / HTTP/1.1\r\nno colon here") == "bad_form"
    assert page.parse_head(b"GET /?lang=%zz HTTP/1.1")[2] == {}  # a mangled query still gets the page


def check_the_new_network_goes_first_and_the_rest_stays():
    cfg = {"site": "s", "wifi": [{"ssid": "a", "password": "1"}, {"ssid": "b", "password": "2"}], "x": [1]}
    new = page.with_network(cfg, "b", "new-pass")
    assert new["wifi"] == [{"ssid": "b", "password": "new-pass"}, {"ssid": "a", "password": "1"}]
    assert new["x"] == [1] and new["site"] == "s"
    assert cfg["wifi"][1]["password"] == "2"  # the old config is not changed
    many = {"wifi": [{"ssid": str(i), "password": ""} for i in range(9)]}
    assert len(page.with_network(many, "new", "")["wifi"]) == page.MAX_NETWORKS


def all_checks():
    return [(name, fn) for name, fn in sorted(globals().items()) if name.startswith("check_")]
