"""Answer a pending approval through Airflow's REST API, as a person's browser or script would.

Run in a process with the project's Airflow environment (``clv.airflow.home.environ``): it builds
the API server's own FastAPI app (``airflow.api_fastapi.app.create_app("core")``: the same routes,
the simple auth manager's login, permission checks and answer validation) and calls it with
FastAPI's TestClient, so no server has to be started. It logs in as admin, waits for the DAG's
pending Human-in-the-loop request, answers it, and prints the request (subject, body, options)
and the API's reply as one JSON line.

    python approval_client.py DAG_ID OPTION PASSWORD WATCH_PID TIMEOUT_SECONDS
"""

from __future__ import annotations

import json
import os
import sys
import time


def main(dag_id: str, option: str, password: str, watch_pid: int, timeout: float) -> int:
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    with TestClient(create_app("core")) as client:
        login = client.post("/auth/token", json={"username": "admin", "password": password})
        assert login.status_code == 201, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        deadline = time.monotonic() + timeout
        while True:
            pending = client.get(
                f"/api/v2/dags/{dag_id}/dagRuns/~/hitlDetails",
                params={"response_received": False},
                headers=headers,
            )
            assert pending.status_code == 200, pending.text
            details = list(pending.json()["hitl_details"])
            if details:
                break
            try:
                os.kill(watch_pid, 0)
            except ProcessLookupError:
                print(json.dumps({"error": "the DAG run ended without asking"}))
                return 1
            if time.monotonic() > deadline:
                print(json.dumps({"error": "no approval request in time"}))
                return 1
            time.sleep(2)
        request = details[0]
        ti = request["task_instance"]
        answer = client.patch(
            f"/api/v2/dags/{dag_id}/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}/-1/hitlDetails",
            json={"chosen_options": [option], "params_input": {}},
            headers=headers,
        )
        print(
            json.dumps(
                {
                    "task_id": ti["task_id"],
                    "state": ti["state"],
                    "subject": request["subject"],
                    "body": request["body"],
                    "options": request["options"],
                    "defaults": request["defaults"],
                    "status": answer.status_code,
                    "answer": answer.json(),
                }
            )
        )
    return 0


if __name__ == "__main__":
    dag, opt, pw, pid, secs = sys.argv[1:6]
    raise SystemExit(main(dag, opt, pw, int(pid), float(secs)))
