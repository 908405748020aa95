"""The reference NTLM security package, written from [MS-NLMP].

``crypto`` holds the primitives of MS-NLMP §6, ``keys`` the response and key functions of
§3.3 and §3.4.5, ``messages`` the wire format of §2.2, ``session`` message integrity and
confidentiality (§3.4), ``handshake`` the client and server of §3.1 / §3.2, and ``package``
the SSPI functions over a SecBufferDesc.
"""
