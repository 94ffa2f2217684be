from correspondence.models import Role
from tests.conftest import csrf_token


def test_sign_in_and_out(client, auth):
    staffer = auth.login(Role.SUPERVISOR)
    assert client.get("/").headers["Location"].endswith("/dashboard/")
    page = client.get("/dashboard/").get_data(as_text=True)
    assert staffer.name in page
    client.post("/logout", data={"csrf_token": auth.csrf("/dashboard/")})
    assert client.get("/dashboard/").status_code == 302


def test_wrong_password_is_a_clear_401(client, factory, session):
    staffer = factory.staffer()
    session.commit()
    response = client.post("/login", data={"email": staffer.email, "password": "nope",
                                           "csrf_token": csrf_token(client)})
    assert response.status_code == 401
    assert "do not match" in response.get_data(as_text=True)


def test_login_is_rate_limited(app, client, factory, session):
    staffer = factory.staffer()
    session.commit()
    limit = app.extensions["mailroom.settings"].login_attempts
    for _ in range(limit):
        client.post("/login", data={"email": staffer.email, "password": "nope", "csrf_token": csrf_token(client)})
    response = client.post("/login", data={"email": staffer.email, "password": factory.PASSWORD,
                                           "csrf_token": csrf_token(client)})
    assert response.status_code == 429
    assert "too many failed sign-ins" in response.get_data(as_text=True)


def test_login_without_csrf_token_is_refused(client, factory, session):
    staffer = factory.staffer()
    session.commit()
    response = client.post("/login", data={"email": staffer.email, "password": factory.PASSWORD})
    assert response.status_code == 400
    assert "form expired" in response.get_data(as_text=True)


def test_one_time_password_must_be_changed_first(client, auth):
    auth.login(Role.CORRESPONDENT, must_change_password=True)
    response = client.get("/inbox/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/account/password")
    token = auth.csrf("/account/password")
    response = client.post("/account/password", data={"csrf_token": token, "current": auth.factory.PASSWORD,
                                                      "new": "a brand new long password",
                                                      "confirm": "a brand new long password"})
    assert response.status_code == 302
    assert client.get("/inbox/").status_code == 200


def test_next_parameter_cannot_leave_the_site(client, factory, session):
    staffer = factory.staffer()
    session.commit()
    response = client.post("/login?next=//evil.example/x", data={
        "email": staffer.email, "password": factory.PASSWORD, "csrf_token": csrf_token(client)})
    assert "evil.example" not in response.headers["Location"]


def test_unknown_route_is_a_clear_404(client, auth):
    auth.login()
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "Not found" in response.get_data(as_text=True)
