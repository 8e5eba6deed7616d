"""``jupyter workbench ...`` as an operator runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from jupyter_workbench import cli_datasets
from jupyter_workbench.core import datasets, projects
from jupyter_workbench.core.context import Identity
from jupyter_workbench.service import WorkbenchService
from jupyter_workbench.settings import Workbench


def run_cli(
    *args: str, db_url: str, tmp_path: Path, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    # no workbench server named: the commands open the store of DATABASE_URL
    local = {k: v for k, v in os.environ.items() if not k.startswith(("WORKBENCH_", "JUPYTERHUB_"))}
    env = {
        **local,
        **(extra_env or {}),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "WORKBENCH_DATA_DIR": str(tmp_path / "wbdata"),
        "DATABASE_URL": db_url,
    }
    return subprocess.run(
        [sys.executable, "-m", "jupyter_workbench.cli", *args],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


def test_migrate_then_info_and_users(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    first = run_cli("migrate", db_url=url, tmp_path=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "migrated from empty to" in first.stdout
    again = run_cli("migrate", db_url=url, tmp_path=tmp_path)
    assert "already at revision" in again.stdout

    service = WorkbenchService(Workbench(database_url=url))
    try:
        service.call(
            Identity("ada", "Ada L."), lambda s, ctx: projects.create(s, ctx, name="P"), write=True
        )
        service.actor_id(Identity("root-admin", is_admin=True))
        service.actor_id(service.system_identity())  # the trash purge's actor: not a person
    finally:
        service.close()

    info = run_cli("info", "--json", db_url=url, tmp_path=tmp_path)
    assert info.returncode == 0, info.stderr
    data = json.loads(info.stdout)
    assert data["database"]["up_to_date"] is True
    assert data["database"]["counts"] == {"users": 2, "projects": 1}
    assert data["settings"]["database_url"] == url
    assert "jupyter_server" in data["versions"]
    text = run_cli("info", db_url=url, tmp_path=tmp_path).stdout
    assert "Settings (c.Workbench.*)" in text and "revision" in text

    users = run_cli("users", db_url=url, tmp_path=tmp_path)
    assert "ada" in users.stdout and "Ada L." in users.stdout and "2 user(s)" in users.stdout
    admins = run_cli("users", "--admins", "--json", db_url=url, tmp_path=tmp_path)
    assert [json.loads(line)["username"] for line in admins.stdout.splitlines()] == ["root-admin"]


def test_info_reports_a_database_that_needs_migrating(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    result = run_cli("info", db_url=url, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "run 'jupyter workbench migrate'" in result.stdout


def test_migrate_on_each_backend(db_url: str, tmp_path: Path) -> None:
    result = run_cli("migrate", db_url=db_url, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "already at revision" in result.stdout or "migrated" in result.stdout


def test_no_subcommand_prints_usage(tmp_path: Path) -> None:
    result = run_cli(db_url="sqlite://", tmp_path=tmp_path)
    assert result.returncode == 1
    assert "migrate" in result.stdout and "users" in result.stdout


def test_words_a_command_does_not_take_are_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    for args in (("info", "extra"), ("migrate", "now", "please"), ("purge", "all")):
        done = run_cli(*args, db_url=url, tmp_path=tmp_path)
        assert done.returncode == 1, (args, done.stdout)
        assert done.stderr.strip().endswith(
            f"error: {args[0]} takes no arguments (got {' '.join(args[1:])!r}); see --help"
        ), done.stderr
    assert not (tmp_path / "cli.db").exists()  # refused before anything ran (no migration)


def test_an_unknown_or_valueless_option_is_one_line_naming_the_options(tmp_path: Path) -> None:
    """A mistyped option is a usage error (exit code 1): one line naming it and the command's
    options, before anything runs; not argparse's usage dump with "expected one argument" (exit
    code 2), nor a warning while the command runs anyway."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    common = "--database-url, --data-dir, --config"
    datasets = f"--json, --local, --quiet, --link, {common}, --as, --url"
    top = "--debug, --show-config, --show-config-json, --generate-config, -y, --log-level, --config"
    out = str(tmp_path / "out")
    for args, said in [
        (("info", "--jsn"), f"info: unknown option '--jsn' (options: --json, {common})"),
        (("info", "--bogus=1"), f"info: unknown option '--bogus' (options: --json, {common})"),
        (("users", "--admin"),
         f"users: unknown option '--admin' (options: --json, --admins, {common})"),
        (("datasets", "get", "lab/events", out, "--lnk"),
         f"datasets get: unknown option '--lnk' (options: {datasets})"),
        (("datasets", "--bogus"), f"datasets: unknown option '--bogus' (options: {top})"),
        (("--bogus",), f": unknown option '--bogus' (options: {top})"),
        (("rotate-keys", "--batch"), "rotate-keys: '--batch' needs a value (--batch=VALUE)"),
        (("datasets", "list", "lab", "--url", "--json"),
         "datasets list: '--url' needs a value (--url=VALUE)"),
        (("info", "--json=yes"), "info: '--json' takes no value"),
    ]:  # fmt: skip
        done = run_cli(*args, db_url=url, tmp_path=tmp_path)
        assert done.returncode == 1, (args, done.stderr)
        command = "jupyter workbench" + ("" if said.startswith(":") else " ")
        assert done.stderr == f"error: {command}{said}; see --help\n", (args, done.stderr)
        assert done.stdout == "", (args, done.stdout)
    assert not (tmp_path / "cli.db").exists() and not (tmp_path / "out").exists()


def test_an_unknown_or_misspelt_setting_is_one_line_naming_the_closest(tmp_path: Path) -> None:
    """``--Class.trait=`` naming no setting of the command is a usage error too (traitlets only
    warns, and runs the command without it): one line naming it and the closest setting."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    for args, said in [
        (("info", "--Workbench.databse_url=x"),
         "info: unknown setting '--Workbench.databse_url' "
         "(did you mean '--Workbench.database_url'?)"),
        (("info", "--workbench.data_dir", "x"),
         "info: unknown setting '--workbench.data_dir' (did you mean '--Workbench.data_dir'?)"),
        (("info", "--Workbench.nope=1"), "info: unknown setting '--Workbench.nope'"),
        (("users", "--Nope.x=1"), "users: unknown setting '--Nope.x'"),
        (("datasets", "get", "lab/events", str(tmp_path / "out"), "--GetCommand.lnk"),
         "datasets get: unknown setting '--GetCommand.lnk' "
         "(did you mean '--GetCommand.link'?)"),
    ]:  # fmt: skip
        done = run_cli(*args, db_url=url, tmp_path=tmp_path)
        assert done.returncode == 1, (args, done.stderr)
        assert done.stderr == f"error: jupyter workbench {said}; see --help\n", (args, done.stderr)
        assert done.stdout == "", (args, done.stdout)
    assert not (tmp_path / "cli.db").exists() and not (tmp_path / "out").exists()
    # a setting typed before the subcommand that reads it: where to put it
    for args, said in [
        (("--Workbench.database_url=x", "info"),
         "jupyter workbench: '--Workbench.database_url' is a setting of 'info': give it after "
         "'info'"),
        (("--GetCommand.link=1", "datasets", "get", "a/b", "out"),
         "jupyter workbench: '--GetCommand.link' is a setting of 'datasets get': give it after "
         "'datasets get'"),
        (("datasets", "--GetCommand.link=1", "get", "a/b", "out"),
         "jupyter workbench datasets: '--GetCommand.link' is a setting of 'get': give it after "
         "'get'"),
    ]:  # fmt: skip
        done = run_cli(*args, db_url=url, tmp_path=tmp_path)
        assert (done.returncode, done.stderr) == (1, f"error: {said}; see --help\n"), args
    # a setting the command has still takes effect
    other = f"sqlite:///{tmp_path / 'other.db'}"
    done = run_cli("info", f"--Workbench.database_url={other}", "--json", db_url=url,
                   tmp_path=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["settings"]["database_url"] == other


DATASETS_OPTIONS = {  # each datasets subcommand's own options, beside these
    "": {"--json", "--local", "--database-url", "--data-dir", "--config", "--url"},
    "commit": {"--as", "--quiet", "-m", "--message", "--parent", "--strict-parent"}
    | {"--update", "--ignore"},
    "list": {"--as"},
    "diff": {"--as"},
    "get": {"--as", "--quiet", "--link"},
    "tag": {"--as"},
    "untag": {"--as"},
    "verify": {"--as", "--quiet"},
    "gc": {"--quiet", "--dry-run"},  # the whole store: no --as
}


def test_each_datasets_subcommand_takes_and_shows_only_its_own_options(tmp_path: Path) -> None:
    """An option of another subcommand (``get --dry-run``) is a usage error naming where it
    belongs, not accepted and ignored; each subcommand's --help lists only its own options."""
    from jupyter_workbench.cli_datasets import DatasetsGroup

    assert set(DATASETS_OPTIONS) - {""} == set(DatasetsGroup.subcommands)
    for name, (cls, _) in DatasetsGroup.subcommands.items():
        shown = {line.split("=")[0] for line in cls().emit_help() if line.startswith("-")}
        assert shown == DATASETS_OPTIONS[""] | DATASETS_OPTIONS[name], name
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    out = str(tmp_path / "out")
    for args, said in [
        (("get", "lab/events", out, "--dry-run"), "get: '--dry-run' is an option of 'gc'"),
        (("list", "lab", "--quiet"), "list: '--quiet' is an option of 'commit', 'get', 'verify', "
         "'gc'"),
        (("diff", "lab/events", "v1", "-m", "x"), "diff: '-m' is an option of 'commit'"),
        (("gc", "--as=ada"), "gc: '--as' is an option of 'commit', 'list', 'diff', 'get', "
         "'tag', 'untag', 'verify'"),
    ]:  # fmt: skip
        done = run_cli("datasets", *args, db_url=url, tmp_path=tmp_path)
        assert done.returncode == 1, (args, done.stderr)
        line = f"error: jupyter workbench datasets {said}, not of this command (options: --json, "
        assert done.stderr.startswith(line), (args, done.stderr)
        assert done.stdout == "", (args, done.stdout)
    assert not (tmp_path / "cli.db").exists() and not (tmp_path / "out").exists()


# the settings a subcommand inherits from its base but does not read (it has no option for them)
UNREAD: dict[tuple[str, ...], set[str]] = {
    ("datasets", "gc"): {"user"},  # the whole store, as its owner: no --as
    ("datasets", "list"): {"quiet"},  # no progress bar: no --quiet
    ("datasets", "diff"): {"quiet"},
    ("datasets", "tag"): {"quiet"},
    ("datasets", "untag"): {"quiet"},
}


def test_an_inherited_setting_a_subcommand_does_not_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``datasets gc --GcCommand.user=alice`` (a base's setting gc has no option for) is a
    usage error like any unknown setting, not accepted and ignored; so is it given on the base
    (``--DatasetsCommand.user``, which configures gc too). Every subcommand's inherited settings
    are checked, each taken or refused according to UNREAD."""
    from traitlets.config.application import Application

    from jupyter_workbench.cli import WorkbenchCommand
    from jupyter_workbench.cli_options import CommandApp

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    for setting in ("--GcCommand.user=alice", "--DatasetsCommand.user=alice"):
        done = run_cli("datasets", "gc", setting, "--dry-run", db_url=url, tmp_path=tmp_path)
        name = setting.split("=")[0]
        said = f"error: jupyter workbench datasets gc: unknown setting '{name}'; see --help\n"
        assert (done.returncode, done.stderr, done.stdout) == (1, said, ""), setting
    assert not (tmp_path / "cli.db").exists()  # refused before anything ran

    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path))

    def leaves(
        subcommands: dict[str, Any], words: tuple[str, ...] = ()
    ) -> list[tuple[tuple[str, ...], type[Application]]]:
        found: list[tuple[tuple[str, ...], type[Application]]] = []
        for word, (cls, _) in subcommands.items():
            nested = cls.subcommands if isinstance(cls.subcommands, dict) else {}  # a leaf: a trait
            found += leaves(nested, (*words, word)) if nested else [((*words, word), cls)]
        return found

    checked = 0
    for words, cls in leaves(WorkbenchCommand.subcommands):
        for base in cls.__mro__[1:]:
            if not (issubclass(base, CommandApp) and base is not CommandApp):
                continue
            for trait in base.class_own_traits(config=True):
                for name in (cls.__name__, base.__name__):
                    app = WorkbenchCommand()
                    try:
                        app.initialize([*words, f"--{name}.{trait}=1"])
                        taken = True
                    except SystemExit as exc:
                        assert exc.code == 1, (words, name, trait)
                        taken = False
                    finally:
                        for c in (type(app.subapp), type(getattr(app.subapp, "subapp", None))):
                            if isinstance(c, type) and issubclass(c, Application):
                                c.clear_instance()
                        WorkbenchCommand.clear_instance()
                    err = capsys.readouterr().err
                    unread = trait in UNREAD.get(words, set())
                    assert taken is not unread, (words, name, trait, err)
                    if unread:
                        assert f"unknown setting '--{name}.{trait}'" in err, err
                    checked += 1
    assert checked >= 40  # every datasets subcommand's inherited settings, twice


def test_help_all_lists_only_the_settings_a_subcommand_takes(tmp_path: Path) -> None:
    """``--help-all`` of a subcommand lists only the settings it takes: gc's leaves out the
    ``user`` it refuses (no ``--as``), list's the ``quiet`` it refuses (no ``--quiet``); a
    subcommand that takes ``--as`` still lists ``user``."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    gc = run_cli("datasets", "gc", "--help-all", db_url=url, tmp_path=tmp_path)
    assert gc.returncode == 0, gc.stderr
    assert "--GcCommand.dry_run=" in gc.stdout and "--Workbench.database_url=" in gc.stdout
    assert ".user=" not in gc.stdout  # refused by gc: not offered either
    listing = run_cli("datasets", "list", "--help-all", db_url=url, tmp_path=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "--DatasetsCommand.user=" in listing.stdout
    assert ".quiet=" not in listing.stdout
    for words in UNREAD:  # every refused setting is missing from its subcommand's help
        shown = run_cli(*words, "--help-all", db_url=url, tmp_path=tmp_path).stdout
        assert not any(f".{trait}=" in shown for trait in UNREAD[words]), words


def test_every_documented_datasets_invocation_is_still_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each ``jupyter workbench datasets ...`` line of README.md and docs/ gets past the option
    check to its subcommand, every option taken."""
    import shlex

    from jupyter_workbench.cli import WorkbenchCommand
    from jupyter_workbench.cli_datasets import DatasetsGroup

    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path))
    root = Path(__file__).parent.parent
    lines = [
        line.split("#")[0].strip()
        for doc in (root / "README.md", *sorted((root / "docs").glob("*.md")))
        for line in doc.read_text().splitlines()
        if line.startswith("jupyter workbench datasets ") and "{" not in line
    ]
    assert len(lines) >= 10
    for line in lines:
        words = shlex.split(line)[2:]
        app = WorkbenchCommand()
        try:
            app.initialize(words)  # reads the options, runs nothing
            command = app.subapp.subapp  # type: ignore[union-attr]
            assert type(command) is DatasetsGroup.subcommands[words[1]][0], line
            assert all(not w.startswith("-") for w in command.extra_args), line
        finally:
            for cls in (DatasetsGroup, *(c for c, _ in DatasetsGroup.subcommands.values())):
                cls.clear_instance()


def test_the_help_names_every_subcommand() -> None:
    from jupyter_workbench.cli import WorkbenchCommand

    for name in WorkbenchCommand.subcommands:
        assert name in WorkbenchCommand.description, name


def test_purge_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'purge.db'}"
    result = run_cli("purge", db_url=url, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "purged 0 project(s)" in result.stdout


def test_rotate_keys_with_a_new_key_file_key_keeps_every_secret_readable(tmp_path: Path) -> None:
    """`rotate-keys --new-key --prune`: a new key first in the key file, every secret
    re-encrypted under it, the old key dropped; a running service follows the file."""
    from sqlalchemy import select

    from jupyter_workbench.core import user_secrets
    from jupyter_workbench.core.keyring import read_key_file
    from jupyter_workbench.db.models import User, UserSecret

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    settings = Workbench(database_url=url, data_dir=str(tmp_path / "wbdata"))
    service = WorkbenchService(settings)
    try:
        for name in ("ada", "bob"):
            service.call(
                Identity(name),
                lambda s, ctx: user_secrets.put(
                    s, ctx, service.keyring(), "TOKEN", f"t-{ctx.user.username}"
                ),
                write=True,
            )
        old_id = service.keyring().current_id
        old_key = read_key_file(Path(settings.secrets_key_file))[0]

        done = run_cli("rotate-keys", "--new-key", "--prune", db_url=url, tmp_path=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "re-encrypted 2 secret(s)" in done.stdout
        keys = read_key_file(Path(settings.secrets_key_file))
        assert len(keys) == 1 and keys[0] != old_key  # the old key is gone for good
        # the running service reads the new key file and still decrypts everything
        assert service.keyring().current_id != old_id
        with service.db.transaction() as s:
            assert {r.key_id for r in s.scalars(select(UserSecret))} == {
                service.keyring().current_id
            }
            ada = s.scalar(select(User).where(User.username == "ada"))
            assert ada is not None
            assert user_secrets.environment_of(s, ada, service.keyring()) == {"TOKEN": "t-ada"}
    finally:
        service.close()

    # with AUTH_SECRET_KEY the key file flags are refused with a clear message
    env_mode = run_cli("rotate-keys", "--prune", db_url=url, tmp_path=tmp_path,
                       extra_env={"AUTH_SECRET_KEY": "k"})  # fmt: skip
    assert env_mode.returncode == 2 and "AUTH_SECRET_KEY_PREVIOUS" in env_mode.stderr
    # moving from the key file to AUTH_SECRET_KEY: without the old key, a clear refusal
    moved = run_cli("rotate-keys", db_url=url, tmp_path=tmp_path,
                    extra_env={"AUTH_SECRET_KEY": "k"})  # fmt: skip
    assert moved.returncode == 1 and "Traceback" not in moved.stderr, moved.stderr
    assert f"secrets of {url}" in moved.stdout
    assert "is not configured" in moved.stderr and "AUTH_SECRET_KEY_PREVIOUS" in moved.stderr
    assert settings.secrets_key_file in moved.stderr  # where the old key is
    moved = run_cli("rotate-keys", db_url=url, tmp_path=tmp_path,
                    extra_env={"AUTH_SECRET_KEY": "k",
                               "AUTH_SECRET_KEY_PREVIOUS": keys[0]})  # fmt: skip
    assert moved.returncode == 0 and "re-encrypted 2 secret(s)" in moved.stdout, moved.stderr


def test_datasets_list_shows_every_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert run_cli("migrate", db_url=url, tmp_path=tmp_path).returncode == 0
    owner = Identity("ada", "Ada L.")
    service = WorkbenchService(Workbench(database_url=url, data_dir=str(tmp_path / "data")))
    try:

        def make(s: Any, ctx: Any) -> None:
            projects.create(s, ctx, name="P", slug="p")
            for name in ("c", "a", "b"):
                datasets.create(s, ctx, "p", name=name, description=f"about {name}")

        service.call(owner, make, write=True)
        folder = tmp_path / "src"
        folder.mkdir()
        for n in range(3):
            (folder / "x.txt").write_text(str(n))
            service.datasets.commit_folder(owner, "p", "a", folder, message=f"take {n}")
        # the command reads a page at a time (two here): it shows every item all the same
        monkeypatch.setattr(cli_datasets, "LIST_PAGE", 2)
        command = cli_datasets.ListCommand(as_json=True)
        command.run(service, owner, ["p"])
        assert [d["name"] for d in json.loads(capsys.readouterr().out)] == ["a", "b", "c"]
        command.run(service, owner, ["p/a"])
        assert [v["version"] for v in json.loads(capsys.readouterr().out)] == [3, 2, 1]
    finally:
        service.close()
    text = run_cli("datasets", "list", "p", "--as=ada", db_url=url, tmp_path=tmp_path).stdout
    assert "about b" in text

    def ada(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli("datasets", *args, "--as=ada", db_url=url, tmp_path=tmp_path)

    tagged = ada("tag", "p/a@v2", "stable")
    assert tagged.returncode == 0 and tagged.stdout.strip() == "p/a@stable -> v2", tagged.stderr
    versions = ada("list", "p/a").stdout.splitlines()
    assert versions[1].startswith("v2") and "stable" in versions[1] and "stable" not in versions[0]
    assert ada("untag", "p/a", "stable").stdout.strip() == "p/a: tag stable removed"
    again = ada("untag", "p/a", "stable")
    assert again.returncode == 2 and "has no tag 'stable'" in again.stderr
    assert "usage" in ada("tag", "p/a", "stable").stderr  # which version, then
    reserved = ada("tag", "p/a@v1", "latest")
    assert reserved.returncode == 2 and "'latest' always points" in reserved.stderr


def committed(tmp_path: Path) -> str:
    """The URL of a store whose project 'lab' has dataset 'events' v1 (one file, f.txt)."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    source = tmp_path / "src"
    source.mkdir()
    (source / "f.txt").write_text("one")
    assert run_cli("migrate", db_url=url, tmp_path=tmp_path).returncode == 0
    service = WorkbenchService(Workbench(database_url=url, data_dir=str(tmp_path / "wbdata")))
    try:
        service.call(
            Identity("ada", "Ada L.", is_admin=True),
            lambda s, ctx: projects.create(s, ctx, name="Lab"),
            write=True,
        )
    finally:
        service.close()
    commit = run_cli("datasets", "commit", "lab/events", str(source), "--quiet",
                     db_url=url, tmp_path=tmp_path)  # fmt: skip
    assert commit.returncode == 0, commit.stderr
    return url


def test_datasets_get_copies_or_links(tmp_path: Path) -> None:
    url = committed(tmp_path)
    # the same folder again: no new version, and the line says so
    again = run_cli("datasets", "commit", "lab/events", str(tmp_path / "src"), "--quiet",
                    db_url=url, tmp_path=tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "lab/events@v1: 1 files, 3 bytes (unchanged: the files are v1's, no new version)" in (
        again.stdout
    )
    copied = run_cli("datasets", "get", "lab/events", str(tmp_path / "copy"), "--quiet",
                     db_url=url, tmp_path=tmp_path)  # fmt: skip
    assert copied.returncode == 0, copied.stderr
    assert copied.stdout.strip().endswith("(1 fetched, 0 from the cache)")
    assert os.stat(tmp_path / "copy" / "f.txt").st_nlink == 1
    linked = run_cli("datasets", "get", "lab/events", str(tmp_path / "link"), "--link",
                     "--quiet", db_url=url, tmp_path=tmp_path)  # fmt: skip
    assert linked.returncode == 0, linked.stderr
    assert linked.stdout.strip().endswith("(0 fetched, 1 from the cache, 1 hard-linked)")
    assert (tmp_path / "link" / "f.txt").read_text() == "one"
    assert os.stat(tmp_path / "link" / "f.txt").st_nlink == 2
    # through a workbench server there is no cache of this machine to link from
    remote = run_cli("datasets", "get", "lab/events", str(tmp_path / "r"), "--link",
                     "--url", "http://127.0.0.1:9", db_url=url, tmp_path=tmp_path)  # fmt: skip
    assert remote.returncode != 0 and "--link" in remote.stderr, remote.stderr


def test_datasets_get_into_a_file_is_one_error_line_and_writes_nothing(tmp_path: Path) -> None:
    """A DEST that is a file, or under one, is one error line with exit code 2, as through a
    workbench server: the file is left as it was and nothing is fetched into the cache."""
    url = committed(tmp_path)
    mine = tmp_path / "mine.txt"
    mine.write_text("mine")
    cache = tmp_path / "wbdata" / "cache"
    before = sorted(cache.rglob("*")) if cache.exists() else []
    done = run_cli("datasets", "get", "lab/events@v1", str(mine), "--quiet",
                   db_url=url, tmp_path=tmp_path)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr == f"error: materialize: {mine} is not a folder\n" and done.stdout == ""
    under = run_cli("datasets", "get", "lab/events", str(mine / "v1"), "--quiet",
                    db_url=url, tmp_path=tmp_path)  # fmt: skip
    assert under.returncode == 2, under.stderr
    assert under.stderr.startswith("error: ") and under.stderr.count("\n") == 1, under.stderr
    assert f"Not a directory: '{mine / 'v1'}'" in under.stderr
    # a folder where the version has the file f.txt: named, nothing written
    dest = tmp_path / "dest"
    (dest / "f.txt").mkdir(parents=True)
    clash = run_cli("datasets", "get", "lab/events", str(dest), "--quiet",
                    db_url=url, tmp_path=tmp_path)  # fmt: skip
    assert clash.returncode == 2, clash.stderr
    assert clash.stderr == (
        f"error: materialize: {dest / 'f.txt'} is a folder where the version has a file\n"
    )
    assert [p.name for p in dest.rglob("*")] == ["f.txt"]
    assert mine.read_text() == "mine"
    assert (sorted(cache.rglob("*")) if cache.exists() else []) == before


def test_datasets_diff_text_names_columns_only_when_they_changed() -> None:
    table = {"path": "t.csv", "rows": {"old": 2, "new": 3, "added": 1, "removed": 0}}
    same = {"added": [], "removed": [], "changed": [], "columns": ["a"]}
    changed = {
        "added": ["z"],
        "removed": ["b"],
        "changed": [{"column": "a", "old_type": "int64", "new_type": "float64"}],
        "columns": ["a", "z"],
    }
    diff = {"from": 1, "to": 2, "added": [], "removed": [], "modified": [],
            "tables": [{**table, "schema": same}, {**table, "schema": changed}]}  # fmt: skip
    assert cli_datasets._diff_text(diff).splitlines() == [
        "v1 -> v2",
        "    t.csv: rows 2 -> 3 (+1 -0)",
        "    t.csv: rows 2 -> 3 (+1 -0); columns +z, -b, a: int64 -> float64",
    ]


def test_datasets_commit_refuses_a_version_in_its_target(tmp_path: Path) -> None:
    """``commit lab/events@v1 PATH`` made a new version replacing the latest's files, the
    ``@v1`` ignored; it is refused, pointing at --parent, and nothing is committed."""
    url = committed(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    (other / "g.txt").write_text("two")
    done = run_cli("datasets", "commit", "lab/events@v1", str(other), "-m", "x", "--quiet",
                   db_url=url, tmp_path=tmp_path)  # fmt: skip
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert "'lab/events@v1'" in done.stderr and "--parent" in done.stderr, done.stderr
    listed = run_cli("datasets", "list", "lab/events", "--json", db_url=url, tmp_path=tmp_path)
    assert [v["version"] for v in json.loads(listed.stdout)] == [1]


def test_datasets_commit_leaves_out_litter_and_says_so(tmp_path: Path) -> None:
    """The store's own commit follows the same ignore rules as the client's (defaults,
    .wbignore, each --ignore) and its line names what it left out; --strict-parent without
    --parent is one error line, and nothing is committed."""
    url = committed(tmp_path)
    source = tmp_path / "work"
    (source / ".ipynb_checkpoints").mkdir(parents=True)
    (source / ".ipynb_checkpoints" / "a-checkpoint.csv").write_text("old")
    (source / "a.csv").write_text("x\n1\n")
    (source / "b.log").write_text("log")
    (source / "c.tmp").write_text("tmp")
    (source / ".wbignore").write_text("*.log\n")
    done = run_cli("datasets", "commit", "lab/events", str(source), "--ignore", "*.tmp",
                   "--ignore", "!.wbignore", "--quiet", db_url=url, tmp_path=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("lab/events@v2: 2 files, 10 bytes"), done.stdout
    assert done.stdout.rstrip().endswith("; left out .ipynb_checkpoints/, b.log, c.tmp")
    got = run_cli("datasets", "get", "lab/events@v2", str(tmp_path / "v2"), "--quiet",
                  db_url=url, tmp_path=tmp_path)  # fmt: skip
    assert got.returncode == 0, got.stderr
    assert sorted(p.name for p in (tmp_path / "v2").iterdir()) == [".wbignore", "a.csv"]
    strict = run_cli("datasets", "commit", "lab/events", str(source), "--strict-parent",
                     "--quiet", db_url=url, tmp_path=tmp_path)  # fmt: skip
    assert strict.returncode != 0 and "Traceback" not in strict.stderr, strict.stderr
    assert "strict_parent: needs parent" in strict.stderr, strict.stderr
    listed = run_cli("datasets", "list", "lab/events", "--json", db_url=url, tmp_path=tmp_path)
    assert [v["version"] for v in json.loads(listed.stdout)] == [2, 1]
