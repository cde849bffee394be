"""The console's accounts, stored: users and their passwords, server-side sessions, login attempts.

No HTTP here (the cookie is ``console/auth.py``'s): the CLI's ``sescontacts users`` and the schema use this
package without loading the web console.
"""
