"""The load balancer's desired shape (`desired`) and its HAProxy rendering (`config`)."""
