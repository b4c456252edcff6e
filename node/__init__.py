"""The local process node: a kubelet whose containers are processes (``knserve node``).

It registers a Node, binds and runs the pods scheduled to it, each in its own network and
mount namespace on the node's bridge, gives them Service IPs, cluster DNS, volumes and
service-account tokens as a kubelet, kube-proxy and CoreDNS would, and reports their status.
"""
