"""Model configs: JSON parameters checked by an optional JSON Schema, numbered revisions, diffs."""

from __future__ import annotations

import http.server
import threading
import time

import pytest

from jupyter_workbench.core import model_configs as mc
from jupyter_workbench.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
)
from jupyter_workbench.db.models import ModelConfig, ModelConfigRevision

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "lr": {"type": "number", "exclusiveMinimum": 0},
        "layers": {"type": "array", "items": {"type": "integer", "minimum": 1}},
        "optimizer": {"enum": ["adam", "sgd"]},
    },
    "required": ["lr"],
}
PARAMS = {"lr": 0.01, "layers": [64, 32], "optimizer": "adam"}


@pytest.fixture
def slug(make_project, add_member):
    slug = make_project("alice", "P")
    add_member(slug, "ed", "editor")
    add_member(slug, "vi", "viewer")
    return slug


def create(call, slug, name="resnet", params=None, schema=None, user="ed", **kw):
    def fn(s, ctx):
        config, rev = mc.create(
            s,
            ctx,
            slug,
            name=name,
            parameters=PARAMS if params is None else params,
            schema=schema,
            **kw,
        )
        return mc.config_json(s, config, rev)

    return call(user, fn)


def change(call, slug, changes, name="resnet", user="ed", **kw):
    def fn(s, ctx):
        config, rev = mc.update(s, ctx, slug, name, changes, **kw)
        return mc.config_json(s, config, rev)

    return call(user, fn)


def read(call, slug, name="resnet", user="vi"):
    return call(user, lambda s, ctx: mc.config_json(s, *mc.get(s, ctx, slug, name)))


def revisions(call, slug, name="resnet", **kw):
    def fn(s, ctx):
        page = mc.list_revisions(s, ctx, slug, name, **kw)
        return [mc.revision_json(s, r) for r in page.items]

    return call("vi", fn)


def test_create_and_read_a_config(slug, call):
    data = create(call, slug, schema=SCHEMA, description="baseline")
    assert data["revision"] == 1
    assert data["parameters"] == PARAMS
    assert data["schema"] == SCHEMA
    assert data["description"] == "baseline"
    assert read(call, slug) == data  # viewers read
    [rev] = revisions(call, slug)
    assert (rev["number"], rev["author"], rev["parameters"]) == (1, "ed", PARAMS)


def test_parameters_must_be_a_json_object_of_limited_size(slug, call):
    for bad in ([1, 2], "lr=1", 3):
        with pytest.raises(BadRequest, match=r"^parameters: must be a JSON object"):
            create(call, slug, params=bad)
    with pytest.raises(BadRequest, match=r"^parameters: larger than 256 KiB"):
        create(call, slug, params={"blob": "x" * (256 * 1024)})


def test_invalid_schema_is_refused(slug, call, count_rows):
    with pytest.raises(BadRequest, match=r"^schema/type: not a valid JSON Schema") as err:
        create(call, slug, schema={"type": "objekt"})
    assert err.value.code == "invalid_schema"
    with pytest.raises(BadRequest, match=r"^schema/properties/lr/minimum: ") as err:
        create(call, slug, schema={"properties": {"lr": {"minimum": "zero"}}})
    assert err.value.code == "invalid_schema"
    assert count_rows(ModelConfig) == 0


def test_a_schema_referring_elsewhere_is_refused_without_fetching_it(slug, call, count_rows):
    """A ``$ref`` to another document would make the server fetch a URL a caller chose."""
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"type": "object"}')

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/schema.json"
        for schema in ({"$ref": url}, {"properties": {"lr": {"$ref": url}}}):
            with pytest.raises(BadRequest, match=r"^schema: .*is not fetched") as err:
                create(call, slug, schema=schema)
            assert err.value.code == "invalid_schema"
    finally:
        server.shutdown()
        server.server_close()
    assert hits == []
    assert count_rows(ModelConfig) == 0
    # a reference inside the schema itself works
    local = {"$defs": {"rate": {"type": "number"}}, "properties": {"lr": {"$ref": "#/$defs/rate"}}}
    assert create(call, slug, schema=local)["revision"] == 1


def test_a_backtracking_pattern_does_not_stall_validation(slug, call):
    schema = {"properties": {"tag": {"type": "string", "pattern": "^(a+)+$"}}}
    started = time.monotonic()
    with pytest.raises(BadRequest, match=r"^parameters/tag: .* does not match"):
        create(call, slug, params={"tag": "a" * 64 + "!"}, schema=schema)
    # Python's re would take longer than the universe's age here; the native engine is linear
    assert time.monotonic() - started < 30


def test_schema_violations_name_the_parameter(slug, call):
    for params, pointer in [
        ({"lr": -1}, "parameters/lr: "),
        ({"lr": "fast"}, "parameters/lr: "),
        ({"lr": 0.1, "layers": [8, 0]}, "parameters/layers/1: "),
        ({"lr": 0.1, "optimizer": "rmsprop"}, "parameters/optimizer: "),
        ({"layers": [1]}, 'parameters/: "lr" is a required property'),
    ]:
        with pytest.raises(BadRequest) as err:
            create(call, slug, params=params, schema=SCHEMA)
        assert err.value.code == "schema_violation"
        assert err.value.message.startswith(pointer), err.value.message
    # JSON pointer escaping of '/' and '~' in keys
    schema = {"properties": {"a/b~c": {"type": "integer"}}}
    with pytest.raises(BadRequest, match=r"^parameters/a~1b~0c: "):
        create(call, slug, params={"a/b~c": "x"}, schema=schema)


def test_every_parameter_or_schema_change_is_a_new_revision(slug, call):
    create(call, slug, schema=SCHEMA)
    assert (
        change(call, slug, {"parameters": {**PARAMS, "lr": 0.02}, "message": "faster"})["revision"]
        == 2
    )
    loose = {**SCHEMA, "required": []}
    assert change(call, slug, {"schema": loose})["revision"] == 3
    assert change(call, slug, {"parameters": {}, "schema": None})["revision"] == 4
    revs = revisions(call, slug)
    assert [r["number"] for r in revs] == [4, 3, 2, 1]  # newest first
    assert [r["number"] for r in revisions(call, slug, sort="number")] == [1, 2, 3, 4]
    assert revs[2]["message"] == "faster"
    assert read(call, slug)["parameters"] == {}

    def old(s, ctx):
        return mc.revision_json(s, mc.get_revision(s, ctx, slug, "resnet", 2))

    assert call("vi", old)["parameters"]["lr"] == 0.02
    with pytest.raises(NotFound, match=r"has no revision 9"):
        call("vi", lambda s, ctx: mc.get_revision(s, ctx, slug, "resnet", 9))


def test_unchanged_parameters_and_description_changes_make_no_revision(slug, call, audit_log):
    create(call, slug)
    assert change(call, slug, {"parameters": dict(PARAMS)})["revision"] == 1
    data = change(call, slug, {"description": "now documented"})
    assert (data["revision"], data["description"]) == (1, "now documented")
    assert len(revisions(call, slug)) == 1
    # the same name or description again, but for surrounding blanks: nothing changes
    data = change(call, slug, {"name": " resnet ", "description": "now documented\n"})
    assert (data["name"], data["description"]) == ("resnet", "now documented")
    assert [e["summary"] for e in audit_log(action="model_config.update")] == [
        {"description": "changed"}
    ]


def test_a_message_without_a_change_is_refused_not_dropped(slug, call, audit_log):
    create(call, slug, message="first")
    for changes in (
        {"message": "tuned"},
        {"parameters": dict(PARAMS), "message": "tuned"},
        {"description": "documented", "message": "tuned"},  # (refused whole: nothing written)
    ):
        with pytest.raises(Conflict, match=r"^message: the parameters and schema are those of "
                           r"revision 1 already; a message is recorded with a new revision "
                           r"only") as refused:  # fmt: skip
            change(call, slug, changes)
        assert refused.value.code == "unchanged"
    assert read(call, slug)["description"] == ""
    assert [r["message"] for r in revisions(call, slug)] == ["first"]
    assert audit_log(action="model_config.update") == []
    # with a change, the message is the new revision's; sent again (a retry), it is answered
    # with that revision, unchanged
    bumped = {"parameters": {**PARAMS, "lr": 0.5}, "message": "tuned"}
    assert change(call, slug, bumped)["revision"] == 2
    assert change(call, slug, bumped)["revision"] == 2
    assert change(call, slug, {"message": "tuned"})["revision"] == 2
    assert [r["message"] for r in revisions(call, slug)] == ["tuned", "first"]
    assert change(call, slug, {"description": "ok", "message": ""})["revision"] == 2


def test_changing_a_number_to_a_boolean_is_a_revision(slug, call):
    create(call, slug, params={"flag": 1})
    data = change(call, slug, {"parameters": {"flag": True}})
    assert data["revision"] == 2
    assert data["parameters"]["flag"] is True


def test_schema_change_revalidates_the_current_parameters(slug, call):
    create(call, slug, schema=SCHEMA)
    strict = {**SCHEMA, "properties": {**SCHEMA["properties"], "lr": {"maximum": 0.001}}}
    with pytest.raises(BadRequest, match=r"^parameters/lr: ") as err:
        change(call, slug, {"schema": strict})
    assert err.value.code == "schema_violation"
    with pytest.raises(BadRequest, match=r"^parameters/layers/0: "):
        change(call, slug, {"parameters": {"lr": 0.5, "layers": [0]}})
    assert read(call, slug)["revision"] == 1


def test_diff_between_revisions_uses_json_pointers(slug, call):
    create(call, slug, params={"lr": 0.1, "layers": [64, 32], "drop": 0.5})
    change(call, slug, {"parameters": {"lr": 0.2, "layers": [64], "seed": 7}})
    change(call, slug, {"schema": {"type": "object"}})

    def diff(s, ctx, a, b):
        return mc.diff(s, ctx, slug, "resnet", a, b)

    d = call("vi", lambda s, ctx: diff(s, ctx, 1, 2))
    assert (d["from"], d["to"]) == (1, 2)
    assert d["parameters"] == [
        {"op": "remove", "path": "/drop", "old": 0.5},
        {"op": "remove", "path": "/layers/1", "old": 32},
        {"op": "replace", "path": "/lr", "old": 0.1, "new": 0.2},
        {"op": "add", "path": "/seed", "new": 7},
    ]
    assert d["schema"] == []
    d = call("vi", lambda s, ctx: diff(s, ctx, 2, 3))
    assert d["parameters"] == []
    assert d["schema"] == [{"op": "replace", "path": "/", "old": None, "new": {"type": "object"}}]
    assert call("vi", lambda s, ctx: diff(s, ctx, 3, 1))["parameters"][0] == {
        "op": "add",
        "path": "/drop",
        "new": 0.5,
    }
    with pytest.raises(NotFound, match=r"no revision 4"):
        call("vi", lambda s, ctx: diff(s, ctx, 1, 4))


def test_rename_and_name_clashes(slug, make_project, add_member, call, count_rows):
    create(call, slug, "resnet")
    create(call, slug, "vit")
    with pytest.raises(Conflict, match=r"^name: a model config named 'vit' already exists"):
        create(call, slug, "vit")
    data = change(call, slug, {"name": "resnet-50"})
    assert (data["name"], data["revision"]) == ("resnet-50", 1)
    with pytest.raises(NotFound, match=r"model config 'resnet' not found"):
        read(call, slug)
    # a rename that clashes is refused as a whole: no revision is left behind
    with pytest.raises(Conflict, match=r"^name: "):
        change(call, slug, {"name": "vit", "parameters": {"lr": 1}}, name="resnet-50")
    assert read(call, slug, "resnet-50")["parameters"] == PARAMS
    assert count_rows(ModelConfigRevision) == 2
    # names are per project
    other = make_project("alice", "Q")
    add_member(other, "ed", "editor")
    create(call, other, "vit")


def test_names_differing_only_in_unicode_normalization_are_one_name(slug, call):
    composed, decomposed = "caf\u00e9", "cafe\u0301"  # both show as 'café'
    assert create(call, slug, decomposed)["name"] == composed
    with pytest.raises(Conflict, match=r"^name: a model config named 'café' already exists"):
        create(call, slug, composed)
    assert read(call, slug, decomposed)["name"] == composed  # found however it is typed
    create(call, slug, "other")
    with pytest.raises(Conflict, match=r"^name: "):
        change(call, slug, {"name": decomposed}, name="other")


def test_list_configs(slug, call):
    for name in ("b-net", "a-net", "other"):
        create(call, slug, name)

    def names(s, ctx, **kw):
        return [
            c["name"]
            for c in map(mc.config_summary_json, mc.list_configs(s, ctx, slug, **kw).items)
        ]

    assert call("vi", names) == ["a-net", "b-net", "other"]
    assert call("vi", lambda s, ctx: names(s, ctx, q="NET", sort="-name")) == ["b-net", "a-net"]


def test_viewers_read_but_do_not_write(slug, call):
    create(call, slug)
    with pytest.raises(Forbidden, match=r"model_configs.write needs the editor role"):
        create(call, slug, "mine", user="vi")
    with pytest.raises(Forbidden):
        change(call, slug, {"description": "x"}, user="vi")
    with pytest.raises(NotFound):
        read(call, slug, user="stranger")


def test_deleting_needs_the_admin_role(slug, call, add_member, count_rows):
    create(call, slug)
    change(call, slug, {"parameters": {"lr": 1}})
    with pytest.raises(Forbidden, match=r"model_configs.delete needs the admin role"):
        call("ed", lambda s, ctx: mc.delete(s, ctx, slug, "resnet"))
    add_member(slug, "ad", "admin")
    call("ad", lambda s, ctx: mc.delete(s, ctx, slug, "resnet"))
    with pytest.raises(NotFound):
        read(call, slug)
    assert count_rows(ModelConfigRevision) == 0
    with pytest.raises(NotFound):
        call("ad", lambda s, ctx: mc.delete(s, ctx, slug, "resnet"))


def test_if_match_protects_concurrent_edits(slug, call):
    tag = create(call, slug)["etag"]
    change(call, slug, {"parameters": {"lr": 1}}, if_match=tag)
    with pytest.raises(PreconditionFailed):
        change(call, slug, {"parameters": {"lr": 2}}, if_match=tag)
    with pytest.raises(PreconditionFailed):
        call("alice", lambda s, ctx: mc.delete(s, ctx, slug, "resnet", if_match=tag))
    assert read(call, slug)["parameters"] == {"lr": 1}


def test_archived_project_refuses_config_writes(slug, call):
    from jupyter_workbench.core import projects

    create(call, slug)
    call("alice", lambda s, ctx: projects.set_archived(s, ctx, slug, True))
    for attempt in (
        lambda: change(call, slug, {"parameters": {"lr": 9}}),
        lambda: create(call, slug, "new"),
        lambda: call("alice", lambda s, ctx: mc.delete(s, ctx, slug, "resnet")),
    ):
        with pytest.raises(Conflict) as err:
            attempt()
        assert err.value.code == "archived"
    assert read(call, slug)["revision"] == 1
