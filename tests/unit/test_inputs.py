"""rollbackctl.inputs: every class of input, many inputs each (property-style with hypothesis where it fits)."""

from __future__ import annotations

import datetime
import json
import os
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from rollbackctl import inputs
from rollbackctl.authority import check_authority
from rollbackctl.errors import AuthorityRefused, UsageError

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

#: Characters that must never reach a name: controls, invisible (format) characters, bidi controls.
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u202e", "\u202a", "\u2066", "\u200e",
             "\u061c", "\U000e0001"]
CONTROL = ["\x00", "\x07", "\x1b", "\n", "\r", "\t", "\x7f", "\x85", "\u2028", "\u2029"]
letters = st.characters(categories=["Lu", "Ll", "Lo", "Nd"], exclude_characters="".join(INVISIBLE))
plain_names = st.lists(st.text(letters, min_size=1, max_size=12), min_size=1, max_size=3).map(" ".join)
any_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]) | st.sampled_from(INVISIBLE + CONTROL),
                   max_size=80)


# ---- people ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("given_name", "canonical"), [
    ("Dana", "Dana"), ("  Dana   Scully ", "Dana Scully"), ("\uff24\uff41\uff4e\uff41", "Dana"),
    ("e\u0301lise", "élise"),
    ("Zoë", "Zoë"), ("李小龍", "李小龍"), ("O'Brien-Smith", "O'Brien-Smith"), ("ﬁona", "fiona")])
def test_names_are_canonical(given_name, canonical):
    assert inputs.person_name(given_name, "--decided-by") == canonical


@pytest.mark.parametrize("bad", ["", "   ", "\u3000", *(f"Da{c}na" for c in INVISIBLE + CONTROL), "\u200b",
                                 "Dana\udcff", "\ue000boss", "x" * 129, "x" * 100_000])
def test_names_refused_name_the_option(bad):
    with pytest.raises(UsageError, match=r"^--decided-by: "):
        inputs.person_name(bad, "--decided-by")


@SETTINGS
@given(name=plain_names)
def test_a_canonical_name_is_stable(name):
    try:
        canonical = inputs.person_name(name, "n")
    except UsageError:
        return  # too long, or letters NFKC turns into something refused
    assert inputs.person_name(canonical, "n") == canonical
    assert inputs.person_key(canonical) == inputs.person_key(name)


@SETTINGS
@given(name=plain_names, bad=st.sampled_from(INVISIBLE + CONTROL), where=st.integers(min_value=0))
def test_any_invisible_or_control_character_in_a_name_is_refused(name, bad, where):
    at = where % (len(name) + 1)
    with pytest.raises(UsageError, match=r"^--consensus name: "):
        inputs.person_name(name[:at] + bad + name[at:], "--consensus name")


def _variants(name: str) -> list[str]:
    return [name.upper(), name.lower(), f"  {name} ", name.replace(" ", "   "), unicodedata.normalize("NFD", name),
            unicodedata.normalize("NFKD", name), name.casefold()]


@SETTINGS
@given(name=plain_names, variant=st.integers(min_value=0, max_value=6))
@example(name="Alice", variant=0)
@example(name="Élodie", variant=4)
def test_one_person_written_twice_is_not_a_consensus(name, variant):
    other = _variants(name)[variant]
    # Unicode's caseless match is the identity of case: dotless i (U+0131) upper-cases to I, another letter's capital
    assume(unicodedata.normalize("NFKC", other).casefold() == unicodedata.normalize("NFKC", name).casefold()
           or variant > 1)
    try:
        inputs.person_name(name, "n")
        inputs.person_name(other, "n")
    except UsageError:
        return
    with pytest.raises(AuthorityRefused, match="one senior engineer"):
        check_authority(name, "senior-engineer", [f"{other}:senior"])


@pytest.mark.parametrize("twin", [f"Al{c}ice" for c in INVISIBLE] + ["Al\x00ice", "Alice\u2028"])
def test_an_invisible_difference_is_refused_not_counted(twin):
    with pytest.raises(UsageError):
        check_authority("Alice", "senior", [f"{twin}:senior"])
    with pytest.raises(UsageError):
        check_authority(twin, "senior", ["Alice:senior"])


@pytest.mark.parametrize(("a", "b"), [("Alice", "Bob"), ("Élodie", "Elodie"), ("Ann", "Anne"), ("李", "季")])
def test_two_distinct_people_still_make_a_consensus(a, b):
    assert check_authority(a, "senior", [f"{b}:senior"]).basis == "consensus"


def test_fullwidth_roles_are_roles():
    assert check_authority("Dana", "\uff23\uff34\uff2f").basis == "tertiary"


# ---- free text ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("ok", ["messaging 5xx", "line one\nline two\ttabbed", "{{ lookup('pipe', 'id') }}",
                                "émoji 👩‍💻 (ZWJ kept)", "x" * 2000])
def test_reasons_accepted_as_written(ok):
    assert inputs.free_text(ok, "--reason") == ok


@pytest.mark.parametrize("bad", ["", " ", "\n\t ", "x" * 2001, "x" * 100_000, "a\x00b", "a\rb", "bell\x07",
                                 "esc\x1b[31m", "a\x7f", "rtl \u202e txet", "\udcff"])
def test_reasons_refused_name_the_option(bad):
    with pytest.raises(UsageError, match=r"^--reason: "):
        inputs.free_text(bad, "--reason", purpose="say why the release is rolled back")


def test_an_empty_reason_says_what_to_do():
    with pytest.raises(UsageError, match=r"^--reason: is empty; say why the release is rolled back$"):
        inputs.free_text("  ", "--reason", purpose="say why the release is rolled back")


@SETTINGS
@given(text=any_text)
def test_free_text_is_accepted_or_refused_never_crashes(text):
    try:
        assert inputs.free_text(text, "--reason") == text
    except UsageError as exc:
        assert str(exc).startswith("--reason: ")


# ---- identifiers --------------------------------------------------------------------------------------

@pytest.mark.parametrize("ok", ["INC-1", "20261128T161600Z-rollback-v0.9.0", "pre-deploy-v1.0.0", "a", "a" * 128,
                                "x.y_z-1"])
def test_identifiers_accepted(ok):
    assert inputs.identifier(ok, "--incident-id") == ok


@pytest.mark.parametrize("bad", ["", ".", "..", "../x", "a/../b", "a/b", "/etc/passwd", "-rf", ".hidden", "a..b",
                                 "a" * 129, "a b", "a\n", "a\x00", "é", "١٢", "\uff41", "a\\b", "~root", "a:b",
                                 "%2e%2e"])
def test_identifiers_refused_name_the_option(bad):
    with pytest.raises(UsageError, match=r"^--backup: "):
        inputs.identifier(bad, "--backup")


@SETTINGS
@given(text=st.text(max_size=140) | st.text(st.sampled_from("a./-_\\"), max_size=12))
def test_an_accepted_identifier_stays_inside_its_folder(text, tmp_path):
    try:
        value = inputs.identifier(text, "--incident-id")
    except UsageError:
        return
    base = tmp_path.resolve()
    assert (base / value).resolve().parent == base
    assert "/" not in value and ".." not in value


# ---- URLs and ports -----------------------------------------------------------------------------------

@pytest.mark.parametrize("ok", ["http://127.0.0.1:9090", "https://prom.example.com", "http://[::1]:9090/",
                                "https://user:pw@prom:443/prometheus", "http://localhost", "http://münchen.de:80"])
def test_urls_accepted(ok):
    assert inputs.url(ok, "--prometheus") == ok


@pytest.mark.parametrize("bad", ["", " ", "127.0.0.1:9090", "ftp://h", "http://", "http://:80", "http://[::1",
                                 "http://[zz]:1", "http://::1:80", "http://h:abc", "http://h:99999", "http://h:0",
                                 "http://h:-1", "http://h:", "http://h x", "http://h\x00", "http://h\n",
                                 "http://a..b", "http://-a", "http://" + "a" * 300, "http://" + "a" * 100_000,
                                 "http://h/?q=1", "http://h#f", "http://\u200bh", "http://h:²"])
def test_urls_refused_name_the_option(bad):
    with pytest.raises(UsageError, match=r"^--prometheus: "):
        inputs.url(bad, "--prometheus")


def test_credentials_stay_out_of_url_messages():
    with pytest.raises(UsageError) as caught:
        inputs.url("http://admin:s3cret@h:port", "--prometheus")
    assert "s3cret" not in str(caught.value)


@SETTINGS
@given(text=st.text(max_size=60).map(lambda t: "http://" + t) | any_text)
def test_urls_are_accepted_or_refused_never_crash(text):
    try:
        inputs.url(text, "--prometheus")
    except UsageError as exc:
        assert str(exc).startswith("--prometheus: ")


@pytest.mark.parametrize(("raw", "port"), [("18080", 18080), ("1", 1), ("65533", 65533), (" 8080 ", 8080)])
def test_env_ports_accepted(raw, port):
    assert inputs.env_port("PORT_BASE", 18080, span=3, environ={"PORT_BASE": raw}) == port


@pytest.mark.parametrize("bad", ["", " ", "²", "١٢٣", "-1", "0", "65534", "99999999999999999999", "8080x", "0x50",
                                 "1e3", "80.0", "9" * 5000])
def test_env_ports_refused_name_the_variable(bad):
    with pytest.raises(UsageError, match=r"^\$PORT_BASE: "):
        inputs.env_port("PORT_BASE", 18080, span=3, environ={"PORT_BASE": bad})


def test_an_unset_port_is_the_default():
    assert inputs.env_port("PORT_BASE", 18080, environ={}) == 18080


# ---- durations, numbers, times ------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["", "0s", "0h0m0s", "1e20", "1e20s", "-5m", "5", "1.5h", "9" * 5000 + "s",
                                 "99999999999999999999h", "8785h", "367d", " 5m", "5m\n", "5m5h"])
def test_durations_refused_name_the_option(bad):
    with pytest.raises(UsageError, match=r"^--interval: "):
        inputs.duration(bad, "--interval")


def test_a_zero_estimate_is_a_duration_where_zero_is_allowed():
    assert inputs.duration("0s", "--fix-estimate", positive=False) == datetime.timedelta(0)


@SETTINGS
@given(text=st.text(st.sampled_from("0123456789hms"), max_size=30) | any_text)
def test_durations_are_bounded_or_refused(text):
    try:
        value = inputs.duration(text, "--interval")
    except UsageError as exc:
        assert str(exc).startswith("--interval: ")
        return
    assert datetime.timedelta(0) < value <= inputs.DURATION_MAX
    moment = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    assert moment - value < moment  # arithmetic on it never overflows in the accepted range of times


@pytest.mark.parametrize("bad", [0, -1, True, "60", 1.5, None, 10**30, 10**400, 31_622_401])
def test_interval_seconds_refused(bad):
    with pytest.raises(UsageError, match=r"^obs: interval_seconds: "):
        inputs.seconds(bad, "obs: interval_seconds")


@pytest.mark.parametrize("bad", [10**400, -(10**400), "1", None, True, [1]])
def test_numbers_refused(bad):
    with pytest.raises(UsageError, match=r"^obs: cpu: "):
        inputs.number(bad, "obs: cpu")


@pytest.mark.parametrize("bad", ["", " ", "yesterday", "0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z",
                                 "9999-12-31T23:59:59Z", "9000-01-01T00:00:00Z", "2026-13-01T00:00:00Z",
                                 "2026-11-28T25:00:00Z", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
                                 "2026-11-28T16:00:00Z" * 10, 12, None])
def test_times_refused_name_the_option(bad):
    with pytest.raises(UsageError, match=r"^--at: "):
        inputs.time(bad, "--at")


@SETTINGS
@given(moment=st.datetimes(timezones=st.just(datetime.UTC)))
def test_times_in_range_are_accepted_others_refused(moment):
    text = moment.isoformat()
    try:
        parsed = inputs.time(text, "--at")
    except UsageError:
        assert not datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC) <= moment < datetime.datetime(
            9000, 1, 1, tzinfo=datetime.UTC)
        return
    assert parsed == moment
    assert parsed - inputs.DURATION_MAX < parsed < parsed + inputs.DURATION_MAX  # no overflow


# ---- documents ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "problem"), [
    ("[" * 100_000, "nested too deeply"), ("[" * 70 + "]" * 70, "top level must be an object"),
    ('{"a":' * 70 + "1" + "}" * 70, "nested more than 64 levels"), ("1" * 5000, "not valid JSON"),
    ('{"a": ' + "1" * 5000 + "}", "not valid JSON"), ("[1, 2]", "top level must be an object"),
    ('"text"', "top level must be an object"), ("null", "top level must be an object"), ("", "not valid JSON"),
    ('{"a": 1', "not valid JSON"), (b"\xff\xfe", "not valid JSON"), ("NaN", "top level")])
def test_json_documents_refused(text, problem):
    with pytest.raises(UsageError, match=rf"^doc: .*{problem}"):
        inputs.parse_json(text, "doc")


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(9))


@pytest.mark.parametrize(("text", "problem"), [
    (BOMB, "aliases"), ("a: &x 1\nb: *x\n", "aliases"), ("[" * 100_000, "nested too deeply|not valid YAML"),
    ("a:" + " [" * 70 + " ]" * 70, "nested more than 64"), ("- 1\n- 2\n", "top level must be an object"),
    ("just text", "top level must be an object"), ("a: !!python/object:os.system x", "not valid YAML"),
    ("a: [unclosed", "not valid YAML"), ("a: " + "1" * 5000, "not valid YAML|Exceeds"), ("", "top level")])
def test_yaml_documents_refused(text, problem):
    with pytest.raises(UsageError, match=rf"^doc: .*({problem})"):
        inputs.parse_yaml(text, "doc")


@SETTINGS
@given(document=st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                             lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                                         max_size=3), max_leaves=30))
def test_json_documents_round_trip_or_are_refused(document):
    text = json.dumps(document)
    try:
        assert inputs.parse_json(text, "doc", top=None) == document
    except UsageError as exc:
        assert str(exc).startswith("doc: ")
        assert inputs.depth(document) > inputs.DOCUMENT_DEPTH


@SETTINGS
@given(text=st.text(st.sampled_from('{}[]":,1a &*-\n'), max_size=60))
def test_any_json_or_yaml_text_is_a_document_or_a_message(text):
    for parse in (inputs.parse_json, inputs.parse_yaml):
        try:
            parse(text, "doc")
        except UsageError as exc:
            assert str(exc).startswith("doc: ")


# ---- files and folders --------------------------------------------------------------------------------

def test_folders_files_and_what_they_are_not(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert inputs.directory(str(tmp_path / "new" / "deeper"), "--incidents-dir") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # judged, not created
    for bad, problem in [("", "is empty"), (str(a_file), "is not a folder"), (str(a_file / "sub"), "is not a folder"),
                         ("a\x00b", "control character"), ("x" * 5000, "characters long")]:
        with pytest.raises(UsageError, match=rf"^--incidents-dir: .*{problem}"):
            inputs.directory(bad, "--incidents-dir")
    with pytest.raises(UsageError, match="does not exist"):
        inputs.directory(str(tmp_path / "nope"), "--incidents-dir", must_exist=True)
    assert inputs.output_file(str(tmp_path / "r.html"), "--output") == tmp_path / "r.html"
    for bad, problem in [(str(tmp_path), "is a folder"), (str(tmp_path / "nope" / "r.md"), "does not exist"),
                         (str(a_file / "r.md"), "is not a folder"), ("", "is empty")]:
        with pytest.raises(UsageError, match=rf"^--output: .*{problem}"):
            inputs.output_file(bad, "--output")
    assert inputs.input_file(str(a_file), "--observations") == a_file
    for bad, problem in [(str(tmp_path), "is a folder"), (str(tmp_path / "nope"), "not found"), ("", "is empty")]:
        with pytest.raises(UsageError, match=rf"^--observations: .*{problem}"):
            inputs.input_file(bad, "--observations")


def test_documents_from_files(tmp_path):
    (tmp_path / "big.json").write_text('{"a": "' + "x" * 100 + '"}')
    assert inputs.load_document(tmp_path / "big.json", "--triggers-report") == {"a": "x" * 100}
    (tmp_path / "bad.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(UsageError, match="not UTF-8"):
        inputs.load_document(tmp_path / "bad.json", "--triggers-report")
    (tmp_path / "bomb.yml").write_text(BOMB)
    with pytest.raises(UsageError, match="aliases"):
        inputs.load_document(tmp_path / "bomb.yml", "obs")
    with pytest.raises(UsageError, match="is a folder"):
        inputs.load_document(tmp_path, "obs")
    if os.geteuid() != 0:  # root reads anything
        (tmp_path / "secret.json").write_text("{}")
        (tmp_path / "secret.json").chmod(0)
        with pytest.raises(UsageError, match="cannot be read"):
            inputs.load_document(tmp_path / "secret.json", "obs")


def test_argparse_types_keep_the_option_name():
    convert = inputs.arg(inputs.identifier, "--backup")
    assert convert("pre-deploy-v1.0.0") == "pre-deploy-v1.0.0"
    with pytest.raises(UsageError, match=r"^--backup: "):
        convert("../x")


def test_paths_accept_pathlike(tmp_path):
    assert inputs.path_text(Path(tmp_path), "--observations") == str(tmp_path)
