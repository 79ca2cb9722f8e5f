// Submits the form that carries a sign-in request to the IdP (SAML HTTP-POST binding); without scripts its button does.
const form = document.getElementById('outbound');
if (form) form.submit();
