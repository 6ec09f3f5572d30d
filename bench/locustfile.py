"""Locust, for those who want its web UI: submit a digit and long-poll the result.

    pip install locust
    locust -f bench/locustfile.py --host http://127.0.0.1:8000

``make bench`` uses ``bench/loadgen.py`` instead: it is cheaper per request, so it leaves
more of the machine to the service it measures.
"""
from locust import HttpUser, between, task

DIGIT = [[0, 0, 5, 13, 9, 1, 0, 0], [0, 0, 13, 15, 10, 15, 5, 0], [0, 3, 15, 2, 0, 11, 8, 0],
         [0, 4, 12, 0, 0, 8, 8, 0], [0, 5, 8, 0, 0, 9, 8, 0], [0, 4, 11, 0, 1, 12, 7, 0],
         [0, 2, 14, 5, 10, 12, 0, 0], [0, 0, 6, 13, 10, 0, 0, 0]]


class DigitsClient(HttpUser):
    wait_time = between(0, 0.01)

    @task
    def predict(self):
        with self.client.post("/v1/models/digits/jobs", json={"instances": [DIGIT]},
                              headers={"Prefer": "wait=30"}, catch_response=True,
                              name="/v1/models/digits/jobs") as response:
            job = response.json()
            if response.status_code not in (200, 202):
                response.failure(f"submit answered {response.status_code}")
                return
        while job["status"] in ("queued", "running"):
            job = self.client.get(f"/v1/jobs/{job['id']}?wait=30", name="/v1/jobs/[id]?wait").json()
        if job["status"] != "succeeded":
            response.failure(f"job ended {job['status']}")
