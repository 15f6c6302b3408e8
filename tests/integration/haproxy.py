"""Debian's haproxy for the tests that put the gateway behind a load balancer or reverse
proxy: started on loopback ports with a configuration the test writes, stopped with it."""
import os
import socket
import subprocess
import time


class HAProxy:
    def __init__(self, directory, config, ports):
        """Runs haproxy with `config` (its text) in `directory`, and waits until each of the
        frontend `ports` takes connections; RuntimeError with haproxy's log if it does not."""
        cfg = os.path.join(directory, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(config)
        self.log_path = os.path.join(directory, "haproxy.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", cfg], stdout=self.log, stderr=self.log)
        deadline = time.time() + 10
        for port in ports:
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.time() > deadline or self.proc.poll() is not None:
                        self.stop()
                        with open(self.log_path) as f:
                            raise RuntimeError("haproxy did not start: " + f.read())
                    time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.log.close()
