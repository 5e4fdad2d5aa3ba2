-- An LDAP directory's account password, sealed with the service's key (as sources' and
-- targets' secrets are); NULL for Entra ID directories.
ALTER TABLE directories ADD COLUMN password TEXT;
