"""The service facade that every transport calls, and the transports' shared conversions."""
