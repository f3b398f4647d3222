def portal(request):
    user = getattr(request, "user", None)
    hospital = getattr(user, "hospital", None) if user is not None and user.is_authenticated else None
    return {"current_hospital": hospital}
