// Copy buttons of the setup portal (the only script; every page works without it).
document.querySelectorAll('button.copy[data-copy]').forEach((button) => {
  const field = document.getElementById(button.getAttribute('data-copy'));
  if (!field || !navigator.clipboard) return;
  button.hidden = false;
  button.addEventListener('click', () => {
    navigator.clipboard.writeText(field.value).then(
      () => { button.textContent = 'Copied'; setTimeout(() => { button.textContent = 'Copy'; }, 2000); },
      () => { field.select(); },
    );
  });
});
