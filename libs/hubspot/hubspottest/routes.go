package hubspottest

// registerRoutes wires every endpoint. Paths are the canonical numbered
// versions; canonicalPath maps the date-versioned ones onto them.
func (s *Server) registerRoutes() {
	// OAuth
	s.handlePlain("POST /oauth/v1/token", routePublic, s.oauthToken)

	// CRM objects
	const obj = "/crm/v3/objects/{objectType}"
	s.handle("GET "+obj, routePortal, s.listObjects)
	s.handle("POST "+obj, routePortal, s.createObject)
	s.handle("GET "+obj+"/{objectId}", routePortal, s.getObject)
	s.handle("PATCH "+obj+"/{objectId}", routePortal, s.patchObject)
	s.handle("DELETE "+obj+"/{objectId}", routePortal, s.deleteObject)
	s.handle("POST "+obj+"/batch/read", routePortal, s.batchRead)
	s.handle("POST "+obj+"/batch/create", routePortal, s.batchCreate)
	s.handle("POST "+obj+"/batch/update", routePortal, s.batchUpdate)
	s.handle("POST "+obj+"/batch/upsert", routePortal, s.batchUpsert)
	s.handle("POST "+obj+"/batch/archive", routePortal, s.batchArchive)
	s.handle("POST "+obj+"/merge", routePortal, s.mergeObjects)
	s.handle("POST "+obj+"/search", routeSearch, s.searchObjects)

	// Properties and groups
	const props = "/crm/v3/properties/{objectType}"
	s.handle("GET "+props, routePortal, s.listProperties)
	s.handle("POST "+props, routePortal, s.createProperty)
	s.handle("POST "+props+"/batch/create", routePortal, s.batchCreateProperties)
	s.handle("POST "+props+"/batch/read", routePortal, s.batchReadProperties)
	s.handle("POST "+props+"/batch/archive", routePortal, s.batchArchiveProperties)
	s.handle("GET "+props+"/groups", routePortal, s.listGroups)
	s.handle("POST "+props+"/groups", routePortal, s.createGroup)
	s.handle("GET "+props+"/groups/{groupName}", routePortal, s.getGroup)
	s.handle("PATCH "+props+"/groups/{groupName}", routePortal, s.patchGroup)
	s.handle("DELETE "+props+"/groups/{groupName}", routePortal, s.deleteGroup)
	s.handle("GET "+props+"/{propertyName}", routePortal, s.getProperty)
	s.handle("PATCH "+props+"/{propertyName}", routePortal, s.patchProperty)
	s.handle("DELETE "+props+"/{propertyName}", routePortal, s.deleteProperty)

	// Owners
	s.handle("GET /crm/v3/owners", routePortal, s.listOwners)
	s.handle("GET /crm/v3/owners/{$}", routePortal, s.listOwners)
	s.handle("GET /crm/v3/owners/{ownerId}", routePortal, s.getOwner)

	// Lists v3
	const lists = "/crm/v3/lists"
	s.handle("POST "+lists, routePortal, s.createList)
	s.handle("GET "+lists, routePortal, s.getLists)
	s.handle("GET "+lists+"/object-type-id/{objectTypeId}/name/{listName}", routePortal, s.getListByName)
	s.handle("GET "+lists+"/{listId}", routePortal, s.getList)
	s.handle("DELETE "+lists+"/{listId}", routePortal, s.deleteList)
	s.handle("GET "+lists+"/{listId}/memberships", routePortal, s.getMembers)
	s.handle("GET "+lists+"/{listId}/memberships/join-order", routePortal, s.getMembers)
	s.handle("DELETE "+lists+"/{listId}/memberships", routePortal, s.clearMembers)
	s.handle("PUT "+lists+"/{listId}/memberships/add", routePortal, s.addMembers)
	s.handle("PUT "+lists+"/{listId}/memberships/remove", routePortal, s.removeMembers)
	s.handle("PUT "+lists+"/{listId}/memberships/add-and-remove", routePortal, s.addAndRemoveMembers)

	// Associations v4
	const v4obj = "/crm/v4/objects/{objectType}/{objectId}/associations/{toObjectType}"
	s.handle("PUT /crm/v4/objects/{fromObjectType}/{fromObjectId}/associations/default/{toObjectType}/{toObjectId}", routePortal, s.putDefaultAssociation)
	s.handle("GET "+v4obj, routePortal, s.listAssociations)
	s.handle("PUT "+v4obj+"/{toObjectId}", routePortal, s.putLabelledAssociation)
	s.handle("DELETE "+v4obj+"/{toObjectId}", routePortal, s.deleteAssociation)
	const v4 = "/crm/v4/associations/{fromObjectType}/{toObjectType}"
	s.handle("POST "+v4+"/batch/create", routePortal, s.batchCreateAssociations)
	s.handle("POST "+v4+"/batch/read", routePortal, s.batchReadAssociations)
	s.handle("POST "+v4+"/batch/archive", routePortal, s.batchArchiveAssociations)
	s.handle("POST "+v4+"/batch/associate/default", routePortal, s.batchAssociateDefault)
	s.handle("POST "+v4+"/batch/labels/archive", routePortal, s.batchArchiveLabels)
	s.handle("GET "+v4+"/labels", routePortal, s.listAssociationLabels)

	// Imports
	s.handle("POST /crm/v3/imports", routePortal, s.startImport)
	s.handle("GET /crm/v3/imports", routePortal, s.listImports)
	s.handle("GET /crm/v3/imports/{importId}", routePortal, s.getImport)
	s.handle("POST /crm/v3/imports/{importId}/cancel", routePortal, s.cancelImport)
	s.handle("GET /crm/v3/imports/{importId}/errors", routePortal, s.importErrors)

	// Webhooks (app-level)
	const hooks = "/webhooks/v3/{appId}"
	s.handlePlain("GET "+hooks+"/settings", routeApp, s.getSettings)
	s.handlePlain("PUT "+hooks+"/settings", routeApp, s.putSettings)
	s.handlePlain("DELETE "+hooks+"/settings", routeApp, s.deleteSettings)
	s.handlePlain("GET "+hooks+"/subscriptions", routeApp, s.listSubscriptions)
	s.handlePlain("POST "+hooks+"/subscriptions", routeApp, s.createSubscription)
	s.handlePlain("POST "+hooks+"/subscriptions/batch/update", routeApp, s.batchUpdateSubscriptions)
	s.handlePlain("GET "+hooks+"/subscriptions/{subscriptionId}", routeApp, s.getSubscription)
	s.handlePlain("PATCH "+hooks+"/subscriptions/{subscriptionId}", routeApp, s.patchSubscription)
	s.handlePlain("DELETE "+hooks+"/subscriptions/{subscriptionId}", routeApp, s.deleteSubscription)
}
