"""The whole system answers through the gateway on both backends."""


def test_health_needs_no_key(system):
    import requests

    response = requests.get(system.url + "/health")
    assert response.status_code == 200
    assert response.json() == {"result": "ok"}


def test_secret_keys_of_both_environments_work(system):
    for key in (system.dev_key, system.prod_key):
        response = system.session(key).get(system.url + "/integrations")
        assert response.status_code == 200, response.text
        assert response.json() == {"data": []}
