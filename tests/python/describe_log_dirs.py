"""kafka-python's KafkaAdminClient.describe_log_dirs() (DescribeLogDirs v0, every replica)
against a broker: prints each log dir's replicas as one JSON line, then a closing line.

Usage: describe_log_dirs.py BOOTSTRAP
"""
import json
import sys

from kafka.admin import KafkaAdminClient


def main():
    admin = KafkaAdminClient(bootstrap_servers=sys.argv[1], client_id="log-dirs-check",
                             request_timeout_ms=20000)
    try:
        response = admin.describe_log_dirs()
    finally:
        admin.close()
    dirs = []
    for error_code, log_dir, topics in response.log_dirs:
        replicas = []
        for name, partitions in topics:
            for index, size, offset_lag, is_future in partitions:
                replicas.append({"topic": name, "partition": index, "size": size,
                                 "offset_lag": offset_lag, "is_future": is_future})
        dirs.append({"error_code": error_code, "log_dir": log_dir, "replicas": replicas})
    print(json.dumps({"api_version": response.API_VERSION, "dirs": dirs}))
    print("described log dirs")


if __name__ == "__main__":
    main()
