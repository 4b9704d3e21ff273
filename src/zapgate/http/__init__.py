"""What both HTTP apps (the public one and the worker's internal one) share: the error
handlers and the request body limit."""
