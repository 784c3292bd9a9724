"""The broker's user registry and the files rendered from it, with nothing running."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from lauks import brokerauth
from lauks.brokerauth import GATEWAY_USER, HEALTH_USER, SERVICE_ROLES, STAFF_USER, BrokerAuth, BrokerAuthError
from stack.cli import main


def test_our_hashes_and_mosquitto_passwds_are_the_same_format(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), "someone", "s3cret"], check=True)
    theirs = passwd.read_text().strip().split(":", 1)[1]
    assert brokerauth.verify_password("s3cret", theirs)
    assert not brokerauth.verify_password("s3creT", theirs)
    ours = brokerauth.hash_password("s3cret")
    assert ours.startswith(f"$7${brokerauth.PBKDF2_ITERATIONS}$") and brokerauth.verify_password("s3cret", ours)
    assert not brokerauth.verify_password("x", "garbage")


def test_a_kit_gets_a_fresh_random_password_each_time_it_is_added(tmp_path: Path) -> None:
    first = brokerauth.add_kit_credentials(tmp_path, "riga-3", "k07")
    second = brokerauth.add_kit_credentials(tmp_path, "riga-3", "k07")
    assert first != second and len(first) >= 24
    auth = BrokerAuth(tmp_path)
    user = auth.users()["riga-3.k07"]
    assert brokerauth.verify_password(second, user["hash"]) and not brokerauth.verify_password(first, user["hash"])
    assert first not in auth.password_file.read_text() and second not in auth.registry_file.read_text()
    assert auth.password_file.read_text().count("riga-3.k07:") == 1


def test_the_acl_gives_a_kit_its_own_five_topics_and_nothing_else(tmp_path: Path) -> None:
    brokerauth.add_kit_credentials(tmp_path, "s", "k1")
    acl = BrokerAuth(tmp_path).acl_file.read_text()
    block = acl.split("user s.k1\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert block == ["topic write lauks/v1/s/k1/readings", "topic write lauks/v1/s/k1/status",
                     "topic read lauks/v1/s/k1/config", "topic read lauks/v1/s/k1/rejected",
                     "topic read lauks/v1/s/k1/update"]
    before_first_user = acl.split("\nuser ", 1)[0]
    assert "topic" not in before_first_user.replace("# ", "") and "pattern" not in acl  # no rule for everyone


def test_revoking_removes_the_kit_from_both_files(tmp_path: Path) -> None:
    brokerauth.add_kit_credentials(tmp_path, "s", "k1")
    brokerauth.add_kit_credentials(tmp_path, "s", "k2")
    assert brokerauth.revoke_kit(tmp_path, "s", "k1") is True
    auth = BrokerAuth(tmp_path)
    assert "s.k1" not in auth.password_file.read_text() and "s.k1" not in auth.acl_file.read_text()
    assert "s.k2:" in auth.password_file.read_text()
    assert brokerauth.revoke_kit(tmp_path, "s", "k1") is False
    assert auth.kits() == [("s", "k2")]


@pytest.mark.parametrize(("site", "kit"), [("S", "k1"), ("s", "k.1"), ("s", ""), ("-s", "k"), ("s", "a" * 33),
                                           ("s", "k1\ntopic readwrite #")])
def test_a_name_that_is_not_a_site_or_kit_name_is_refused_with_a_reason(tmp_path: Path, site: str, kit: str) -> None:
    with pytest.raises(BrokerAuthError, match="not allowed"):
        brokerauth.add_kit_credentials(tmp_path, site, kit)
    assert not (tmp_path / "broker" / "passwd").exists()


def test_service_users_keep_their_passwords_across_runs(tmp_path: Path) -> None:
    first = brokerauth.ensure_service_users(tmp_path)
    assert set(first) == set(SERVICE_ROLES)
    assert brokerauth.ensure_service_users(tmp_path) == first
    auth = BrokerAuth(tmp_path)
    assert auth.service_password(GATEWAY_USER) == first[GATEWAY_USER]
    assert auth.service_password_file(GATEWAY_USER).stat().st_mode & 0o077 == 0
    for path in (auth.password_file, auth.acl_file, auth.registry_file):
        assert path.stat().st_mode & 0o077 == 0
    # A tampered password file is replaced rather than trusted.
    auth.service_password_file(GATEWAY_USER).write_text("guess\n")
    assert brokerauth.ensure_service_users(tmp_path)[GATEWAY_USER] != "guess"


def test_the_registry_refuses_to_change_topic_root_once_it_has_users(tmp_path: Path) -> None:
    BrokerAuth(tmp_path, root="one").add_kit("s", "k")
    with pytest.raises(BrokerAuthError, match="topic root"):
        BrokerAuth(tmp_path, root="two").add_kit("s", "k")
    assert "topic write one/v1/s/k/readings" in BrokerAuth(tmp_path).acl_file.read_text()


def test_a_damaged_registry_is_reported_not_overwritten(tmp_path: Path) -> None:
    auth = BrokerAuth(tmp_path)
    auth.add_kit("s", "k")
    auth.registry_file.write_text("{not json")
    with pytest.raises(BrokerAuthError, match="not valid JSON"):
        auth.add_kit("s", "k2")
    assert auth.registry_file.read_text() == "{not json"


def test_kits_added_at_the_same_time_are_all_kept(tmp_path: Path) -> None:
    threads = [threading.Thread(target=brokerauth.add_kit_credentials, args=(tmp_path, "s", f"k{i}")) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert BrokerAuth(tmp_path).kits() == sorted(("s", f"k{i}") for i in range(8))


def test_kit_revoke_command_says_what_it_did(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kit", "revoke", "s", "k1", "--state-dir", str(tmp_path)]) == 1
    assert "no broker users" in capsys.readouterr().err
    brokerauth.add_kit_credentials(tmp_path, "s", "k1")
    assert main(["kit", "revoke", "s", "k1", "--state-dir", str(tmp_path)]) == 0
    assert "revoked s/k1" in capsys.readouterr().out
    assert main(["kit", "revoke", "s", "k1", "--state-dir", str(tmp_path)]) == 1
    assert "nothing to revoke" in capsys.readouterr().err
    assert main(["kit", "revoke", "S!", "k1", "--state-dir", str(tmp_path)]) == 2
    assert "not allowed" in capsys.readouterr().err


def test_broker_users_command_lists_kits_and_services(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    brokerauth.ensure_service_users(tmp_path)
    brokerauth.add_kit_credentials(tmp_path, "s", "k1")
    assert main(["broker", "users", "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "s.k1" in out and "kit s/k1" in out and GATEWAY_USER in out
    assert "lauks-gateway-w0 .. -w15" in out and "lauks-health" in out


def _block(acl: str, user: str) -> list[str]:
    return acl.split(f"user {user}\n", 1)[1].split("\n\n", 1)[0].splitlines()


def test_gateway_workers_and_the_health_check_get_users_of_their_own_with_the_same_password(tmp_path: Path) -> None:
    passwords = brokerauth.ensure_service_users(tmp_path)
    auth = BrokerAuth(tmp_path)
    hashes = dict(line.split(":", 1) for line in auth.password_file.read_text().splitlines())
    acl = auth.acl_file.read_text()
    workers = [brokerauth.gateway_worker_username(GATEWAY_USER, i) for i in range(brokerauth.GATEWAY_WORKER_USERS)]
    for worker in workers:  # one broker user, so one client id and one session, per worker process
        assert brokerauth.verify_password(passwords[GATEWAY_USER], hashes[worker])
        assert _block(acl, worker) == _block(acl, GATEWAY_USER)
    assert brokerauth.verify_password(passwords[STAFF_USER], hashes[HEALTH_USER])
    assert _block(acl, HEALTH_USER) == ["topic read lauks/v1/healthcheck"]
    assert set(auth.users()) == set(SERVICE_ROLES)  # derived when rendered, not kept in users.json


def test_files_rendered_before_the_derived_users_existed_are_rendered_again_on_next_use(tmp_path: Path) -> None:
    brokerauth.ensure_service_users(tmp_path)
    auth = BrokerAuth(tmp_path)
    old = [line for line in auth.password_file.read_text().splitlines(keepends=True) if "-w" not in line]
    auth.password_file.write_text("".join(old))  # what an older version rendered
    auth.users()  # any use of the registry, e.g. `lauks broker users` or `lauks kit add`
    assert "lauks-gateway-w15:" in auth.password_file.read_text()
