"""Project permissions in the `upload` mode: the first publisher owns a new project; others
are refused until given a role; only owners and admins yank through the admin API; token
limits (read-only, projects) hold for publishing and yanking.

One server for the module.  The tests on project ``perm-shared`` build on each other (owner
publishes, outsider refused, maintainer added, yanks), so they share a module fixture that
runs that story once; the other tests use their own projects."""

from __future__ import annotations

import pytest

import auth_support as A
import support

PW = {"olga": "olga-Pw-0001", "mike": "mike-Pw-0002", "ada": "ada-Pw-00003"}


@pytest.fixture(scope="module")
def srv(module_server_factory):
    s = module_server_factory("auth-perms", **A.server_args("upload"))
    A.add_user(s.data, "olga", PW["olga"])
    A.add_user(s.data, "mike", PW["mike"])
    A.add_user(s.data, "ada", PW["ada"], admin=True)
    return s


@pytest.fixture(scope="module")
def tokens(srv):
    return {
        "olga": A.create_token(srv.data, "olga"),
        "mike": A.create_token(srv.data, "mike"),
        "ada": A.create_token(srv.data, "ada"),
        "olga-ro": A.create_token(srv.data, "olga", read_only=True),
        "olga-other": A.create_token(srv.data, "olga", projects=["perm-other"]),
    }


def roles(srv, project) -> dict[str, str]:
    out = A.roles(srv.data, project)
    return dict(line.split("\t")[:2] for line in out.splitlines() if line.strip())


def twine(clients, token, srv, paths):
    return A.clients_with_token(clients, token).twine_upload(srv.upload_url, [str(p) for p in paths])


def yank(srv, auth, project, version, reason=None):
    body = {"reason": reason} if reason is not None else None
    return A.api(srv, "POST", A.yank_path(project, version), auth, body)


def unyank(srv, auth, project, version):
    return A.api(srv, "POST", A.yank_path(project, version, "unyank"), auth)


def yanked(srv, project, version):
    return {f["filename"]: f.get("yanked", False) for f in srv.files(project) if f"-{version}" in f["filename"]}


@pytest.fixture(scope="module")
def shared(srv, tokens, clients, module_dists):
    """olga publishes perm-shared 1.0 (new project: she becomes owner)."""
    d = module_dists / "perm"
    w10 = support.make_wheel(d, "perm-shared", "1.0")
    support.check(twine(clients, tokens["olga"], srv, [w10.path]))
    return d


def test_first_publisher_becomes_owner(srv, shared):
    assert roles(srv, "perm-shared") == {"olga": "owner"}


def test_outsider_is_refused_until_made_maintainer(srv, tokens, shared, clients):
    wheel = support.make_wheel(shared, "perm-shared", "1.1")
    before, blobs = A.index_state(srv), A.stored_blobs(srv.data)
    proc = twine(clients, tokens["mike"], srv, [wheel.path])
    assert proc.returncode != 0, support.describe(proc)
    out = support.flat(proc.stdout)
    assert "403" in out and "User 'mike' is not an owner or maintainer of the project 'perm-shared'" in out, (
        support.describe(proc)
    )
    assert A.index_state(srv) == before and A.stored_blobs(srv.data) == blobs
    # a password login is refused the same way
    r = A.raw_upload(srv, wheel, A.basic("mike", PW["mike"]))
    assert r.status == 403, r

    A.cli(srv.data, "project", "add-maintainer", "perm-shared", "mike")
    assert roles(srv, "perm-shared") == {"olga": "owner", "mike": "maintainer"}
    support.check(twine(clients, tokens["mike"], srv, [wheel.path]))
    assert srv.file_named("perm-shared", wheel.filename) is not None
    assert [r.actor for r in A.audit(srv.data) if r.action == "publish" and r.subject == wheel.filename] == ["mike"]
    role_rows = [r for r in A.audit(srv.data) if r.action == "role.maintainer"]
    assert role_rows and "perm-shared" in role_rows[-1].subject + role_rows[-1].detail, role_rows


def test_only_owners_and_admins_yank(srv, tokens, shared, make_venv):
    assert roles(srv, "perm-shared").get("mike") == "maintainer", "runs after the maintainer test"
    before = yanked(srv, "perm-shared", "1.1")
    assert before and not any(before.values())

    r = yank(srv, A.token_basic(tokens["mike"]), "perm-shared", "1.1", "maintainer tries")
    assert r.status == 403, r
    assert "not an owner" in r.text, r
    r = yank(srv, A.basic("mike", PW["mike"]), "perm-shared", "1.1")
    assert r.status == 403, r
    A.assert_unauthorized(yank(srv, {}, "perm-shared", "1.1"))
    assert yanked(srv, "perm-shared", "1.1") == before

    r = yank(srv, A.token_basic(tokens["olga"]), "perm-shared", "1.1", "broken by owner")
    assert r.status == 200, r
    assert r.json()["yanked"] is True
    assert set(yanked(srv, "perm-shared", "1.1").values()) == {"broken by owner"}
    rows = [r for r in A.audit(srv.data) if r.action == "yank" and r.subject == "perm-shared 1.1"]
    assert [(r.actor, r.address) for r in rows] == [("olga", "127.0.0.1")]

    venv = make_venv()
    support.check(venv.pip_install("perm-shared", index_url=srv.simple_url))
    assert venv.installed()["perm-shared"] == "1.0"  # pip skips the yanked 1.1

    # an admin may yank and unyank any project
    r = unyank(srv, A.token_basic(tokens["ada"]), "perm-shared", "1.1")
    assert r.status == 200, r
    assert not any(yanked(srv, "perm-shared", "1.1").values())
    assert unyank(srv, A.token_basic(tokens["mike"]), "perm-shared", "1.1").status == 403


def test_removed_role_is_refused_again(srv, tokens, shared, clients):
    A.cli(srv.data, "project", "add-maintainer", "perm-shared", "mike")
    A.cli(srv.data, "project", "remove-role", "perm-shared", "mike")
    assert "mike" not in roles(srv, "perm-shared")
    wheel = support.make_wheel(shared, "perm-shared", "1.2")
    r = A.raw_upload(srv, wheel, A.token_basic(tokens["mike"]))
    assert r.status == 403, r
    assert srv.file_named("perm-shared", wheel.filename) is None


def test_added_owner_may_yank(srv, tokens, dists):
    assert A.raw_upload(srv, support.make_wheel(dists, "perm-coown", "1.0"), A.token_basic(tokens["olga"])).status == 200
    assert yank(srv, A.token_basic(tokens["mike"]), "perm-coown", "1.0").status == 403
    A.cli(srv.data, "project", "add-owner", "perm-coown", "mike")
    assert roles(srv, "perm-coown") == {"olga": "owner", "mike": "owner"}
    r = yank(srv, A.token_basic(tokens["mike"]), "perm-coown", "1.0")
    assert r.status == 200, r


def test_admin_may_publish_to_any_project(srv, tokens, dists):
    assert A.raw_upload(srv, support.make_wheel(dists, "perm-admin", "1.0"), A.token_basic(tokens["olga"])).status == 200
    r = A.raw_upload(srv, support.make_wheel(dists, "perm-admin", "2.0"), A.token_basic(tokens["ada"]))
    assert r.status == 200, r
    assert roles(srv, "perm-admin") == {"olga": "owner"}


def test_outsider_owns_the_project_they_create_first(srv, tokens, dists):
    r = A.raw_upload(srv, support.make_wheel(dists, "perm-mikes", "1.0"), A.token_basic(tokens["mike"]))
    assert r.status == 200, r
    assert roles(srv, "perm-mikes") == {"mike": "owner"}
    r = A.raw_upload(srv, support.make_wheel(dists, "perm-mikes", "1.1"), A.token_basic(tokens["olga"]))
    assert r.status == 403, r
    assert yank(srv, A.token_basic(tokens["olga"]), "perm-mikes", "1.0").status == 403


def test_read_only_token_cannot_publish_or_yank(srv, tokens, clients, dists):
    assert A.raw_upload(srv, support.make_wheel(dists, "perm-ro", "1.0"), A.token_basic(tokens["olga"])).status == 200
    wheel = support.make_wheel(dists, "perm-ro", "1.1")
    proc = twine(clients, tokens["olga-ro"], srv, [wheel.path])
    assert proc.returncode != 0, support.describe(proc)
    out = support.flat(proc.stdout)
    assert "403" in out and "This token is read-only" in out, support.describe(proc)
    assert srv.file_named("perm-ro", wheel.filename) is None
    r = yank(srv, A.token_basic(tokens["olga-ro"]), "perm-ro", "1.0")
    assert r.status == 403 and "read-only" in r.text, r
    assert not any(yanked(srv, "perm-ro", "1.0").values())


def test_project_limited_token_cannot_yank_another_project(srv, tokens, dists):
    assert A.raw_upload(srv, support.make_wheel(dists, "perm-limit", "1.0"), A.token_basic(tokens["olga"])).status == 200
    r = yank(srv, A.token_basic(tokens["olga-other"]), "perm-limit", "1.0")
    assert r.status == 403, r
    assert "limited to the project(s) perm-other" in r.text, r
    assert not any(yanked(srv, "perm-limit", "1.0").values())


def test_token_limit_cannot_be_dodged_with_a_mismatched_form_name(srv, tokens, dists):
    """A token limited to perm-other, a form that names perm-other, a file of another project:
    refused, and nothing of the other project is stored."""
    victim = support.make_wheel(dists, "perm-victim", "1.0")
    blobs = A.stored_blobs(srv.data)
    fields = support.with_overrides(support.upload_fields(victim), {"name": "perm-other"})
    body, ctype = support.encode_multipart(fields, [("content", victim.filename, victim.data, "application/octet-stream")])
    r = srv.request("POST", "/legacy/", {"Content-Type": ctype, **A.token_basic(tokens["olga-other"])}, body)
    assert r.status in (400, 403), r
    assert srv.project_json("perm-victim") is None
    assert srv.project_json("perm-other") is None
    assert A.stored_blobs(srv.data) == blobs


def test_project_limits_and_roles_use_normalized_names(srv, dists):
    token = A.create_token(srv.data, "olga", projects=["Perm_Norm.Pkg"])
    r = A.raw_upload(srv, support.make_wheel(dists, "perm-norm-pkg", "1.0"), A.token_basic(token))
    assert r.status == 200, r
    assert roles(srv, "Perm_Norm.Pkg") == {"olga": "owner"}
    r = A.api(srv, "POST", A.yank_path("Perm_Norm.Pkg", "1.0"), A.token_basic(token))
    assert r.status == 200, r
    assert set(yanked(srv, "perm-norm-pkg", "1.0").values()) != {False}


def test_admin_token_limits_still_apply(srv, tokens, dists):
    """Being an admin does not lift the limits of the token used."""
    assert A.raw_upload(srv, support.make_wheel(dists, "perm-adm-limit", "1.0"), A.token_basic(tokens["olga"])).status == 200
    limited = A.create_token(srv.data, "ada", projects=["perm-elsewhere"])
    read_only = A.create_token(srv.data, "ada", read_only=True)
    for token in (limited, read_only):
        r = A.raw_upload(srv, support.make_wheel(dists, "perm-adm-limit", "2.0"), A.token_basic(token))
        assert r.status == 403, r
        r = yank(srv, A.token_basic(token), "perm-adm-limit", "1.0")
        assert r.status == 403, r
    assert [f["filename"] for f in srv.files("perm-adm-limit")] == ["perm_adm_limit-1.0-py3-none-any.whl"]
    assert not any(yanked(srv, "perm-adm-limit", "1.0").values())
