"""Error pages keep the portal's frame, so a person who hits one can find their way back."""


def test_not_found_is_a_calm_page_of_the_portal(client, north):
    client.force_login(north.doctor)
    response = client.get("/studies/999999/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "This page does not exist, or it is not available to you." in html
    assert 'href="/"' in html and "Log out" in html
