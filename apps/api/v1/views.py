"""Native API views: HTTP shapes over the services."""

from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response


@api_view(["GET"])
@permission_classes([IsAuthenticated])
def auth_check(request):
    """Who the credentials belong to."""
    return Response({"id": request.user.pk, "name": request.user.username})
