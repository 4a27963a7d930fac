"""The lab's Locust user, for `scripts/locust-lab.sh` (or `locust -f`).

Each user requests the fake-DB page `GET /`, reads it for 5 to 15 s, and
requests it again. Two variants:

- LabUser: Locust's default HTTP client, which keeps its connection open
  between requests (keep-alive). A blocking server's worker then stays with
  one thinking user until the server's idle timeout frees it.
- LabUserClose: the same user sending `Connection: close`, so every request
  opens a new connection, as the lab's servers (which close after each
  answer) expect. This is the run the lecture's numbers come from.

Run one of them by class name:
    locust -f scripts/locustfile.py --headless -u 100 -r 10 \\
        --host http://127.0.0.1:9090 LabUserClose
"""

from locust import HttpUser, between, task


class LabUser(HttpUser):
    wait_time = between(5, 15)

    @task
    def index(self):
        self.client.get("/")


class LabUserClose(HttpUser):
    wait_time = between(5, 15)

    @task
    def index(self):
        self.client.get("/", headers={"Connection": "close"})
