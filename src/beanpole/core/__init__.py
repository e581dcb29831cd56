"""The pure core: Beanpole's vocabulary and every decision, as functions from data to data.

Records and enums (`model`), the error tree (`errors`), option settings (`settings`),
deployment plans (`deploy`), health rules (`health`), metric windows (`metrics`), the load
balancer's desired shape and its rendering (`lb`), build plans (`platforms`). Nothing here does
I/O, reads a clock or sleeps; it imports no adapter, service or face.
"""
